//! Random secrets and how to compare them: the one place that draws from the operating
//! system's CSPRNG (via aws-lc-rs) and the one secret comparison.
//!
//! Drawing fails only when the system has no randomness; callers turn that into their
//! own error (or omit an optional identifier), never a panic.
//!
//! [`ring`]: the key rings that let a configured secret rotate without downtime.

pub mod ring;

pub use ring::{KeyMaterial, KeyRefresher, KeyRing, SecretSource, SourceError, open_with_any};

use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The CSPRNG gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system has no randomness")]
pub struct NoRandomness;

/// `bytes` random bytes.
pub fn random_bytes(bytes: usize) -> Result<Vec<u8>, NoRandomness> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| NoRandomness)?;
    Ok(buf)
}

/// `bytes` random bytes as URL-safe base64 without padding.
pub fn random_b64(bytes: usize) -> Result<String, NoRandomness> {
    random_bytes(bytes).map(|b| URL_SAFE_NO_PAD.encode(b))
}

/// `bytes` random bytes as lower-case hex (ids that are also valid FHIR ids).
pub fn random_hex(bytes: usize) -> Result<String, NoRandomness> {
    let buf = random_bytes(bytes)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A uniformly random string of `digits` decimal digits (1..=9), by rejection sampling
/// so that no value is likelier than another.
pub fn random_digits(digits: u32) -> Result<String, NoRandomness> {
    let digits = digits.clamp(1, 9);
    let bound = 10u32.pow(digits);
    let limit = u32::MAX - u32::MAX % bound;
    loop {
        let mut bytes = [0u8; 4];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| NoRandomness)?;
        let draw = u32::from_le_bytes(bytes);
        if draw < limit {
            return Ok(format!("{:0width$}", draw % bound, width = digits as usize));
        }
    }
}

/// Equality whose time depends on neither the contents nor the lengths of the inputs:
/// both sides are digested to 32 bytes first, then compared in constant time. Use it
/// for every comparison with a secret or a fact on file.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (
        digest::digest(&digest::SHA256, a.as_bytes()),
        digest::digest(&digest::SHA256, b.as_bytes()),
    );
    constant_time::verify_slices_are_equal(a.as_ref(), b.as_ref()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_asked_size_and_alphabet() {
        assert_eq!(random_b64(32).map(|s| s.len()), Ok(43));
        let hex = random_hex(12).unwrap_or_default();
        assert_eq!(hex.len(), 24);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(random_b64(32), random_b64(32));
    }

    #[test]
    fn digits_are_clamped_and_numeric() {
        for (asked, expected) in [(0, 1), (6, 6), (8, 8), (12, 9)] {
            let code = random_digits(asked).unwrap_or_default();
            assert_eq!(code.len(), expected);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn comparison_handles_different_lengths() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }
}
