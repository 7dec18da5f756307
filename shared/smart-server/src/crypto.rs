//! Random handles, their hashes, PKCE and constant-time comparison.
//!
//! Codes, refresh handles, transaction ids, CSRF tokens and client secrets are all 256
//! random bits from the OS CSPRNG. The store keeps only their SHA-256: a secret with 256
//! bits of entropy cannot be brute-forced from its hash, so a slow password hash
//! (argon2) would add cost without adding safety, and a leaked table reveals no usable
//! credential.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use secrets::constant_time_eq;

use crate::ServerError;

/// 256 random bits as URL-safe base64 (43 characters).
pub fn random_secret() -> Result<String, ServerError> {
    Ok(secrets::random_b64(32)?)
}

/// The storage key of a secret: `BASE64URL(SHA-256(secret))`.
pub fn hash_secret(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, secret.as_bytes()).as_ref())
}

/// A PKCE `code_challenge` or `code_verifier`: 43–128 unreserved characters (RFC 7636 §4.1).
pub fn is_pkce_string(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 S256: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
/// A verifier equal to the challenge, or malformed, never matches.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    if !is_pkce_string(verifier) || verifier == challenge {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()).as_ref());
    constant_time_eq(&computed, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_follows_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches("", challenge));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = random_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_secret().unwrap());
        assert_ne!(hash_secret(&a), a);
        assert!(constant_time_eq(&hash_secret(&a), &hash_secret(&a)));
        assert!(!constant_time_eq("a", "ab"));
    }
}
