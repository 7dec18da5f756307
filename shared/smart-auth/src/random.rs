//! Random identifiers from the operating system's CSPRNG (via aws-lc-rs).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes as URL-safe base64, or `None` if the CSPRNG failed (which the
/// callers treat as "omit the optional identifier" or as an error, never as a panic).
pub fn random_token(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).ok()?;
    Some(URL_SAFE_NO_PAD.encode(buf))
}
