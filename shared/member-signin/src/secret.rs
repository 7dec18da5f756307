//! Keyed hashing shared by the authorization server and the triggers.
//!
//! One secret, two derived keys, so that a leaked code hash can never be replayed as an
//! authorization-server proof or the reverse:
//! * the **AS proof** (`as_proof` in `clientMetadata`): whoever calls
//!   `(Admin)RespondToAuthChallenge` chooses `clientMetadata`, so the triggers trust a
//!   transaction id only when it comes with an HMAC that only our authorization server
//!   can compute;
//! * the **code hash**: a 6–8 digit code has at most 27 bits of entropy, so a plain
//!   digest in the store could be reversed by trying every code; a keyed hash cannot.

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Keys shorter than this are refused: HMAC-SHA256 wants 256 bits.
pub const MIN_SECRET_BYTES: usize = 32;

/// The `clientMetadata` key carrying the authorization server's transaction id.
pub const METADATA_TRANSACTION: &str = "txn";
/// The `clientMetadata` key carrying the HMAC over client id and transaction id.
pub const METADATA_PROOF: &str = "as_proof";

/// The secret is too short to key HMAC-SHA256 safely.
#[derive(Debug, thiserror::Error)]
#[error("the sign-in secret must have at least {MIN_SECRET_BYTES} bytes")]
pub struct WeakSecret;

/// The shared sign-in secret, held by the authorization server and the triggers function.
#[derive(Clone)]
pub struct SignInSecret {
    proof: hmac::Key,
    code: hmac::Key,
}

impl std::fmt::Debug for SignInSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInSecret(..)")
    }
}

impl SignInSecret {
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&root, label).as_ref());
        Ok(SignInSecret {
            proof: derive(b"member-signin/as-proof"),
            code: derive(b"member-signin/code-hash"),
        })
    }

    /// The proof the authorization server puts next to `transaction_id`, bound to the
    /// Cognito app client so that one app's transaction cannot be replayed on another.
    pub fn proof(&self, client_id: &str, transaction_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &self.proof,
            &joined(&[client_id, transaction_id]),
        ))
    }

    /// Whether `proof` is the proof for this client and transaction (constant time).
    pub fn verify_proof(&self, client_id: &str, transaction_id: &str, proof: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(proof) else {
            return false;
        };
        hmac::verify(&self.proof, &joined(&[client_id, transaction_id]), &tag).is_ok()
    }

    /// The `clientMetadata` the authorization server sends with every call.
    pub fn client_metadata(&self, client_id: &str, transaction_id: &str) -> [(String, String); 2] {
        [
            (METADATA_TRANSACTION.to_owned(), transaction_id.to_owned()),
            (
                METADATA_PROOF.to_owned(),
                self.proof(client_id, transaction_id),
            ),
        ]
    }

    /// The stored form of a one-time code, bound to the member and to the challenge.
    pub fn code_hash(&self, member_key: &str, code_id: &str, code: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &self.code,
            &joined(&[member_key, code_id, code]),
        ))
    }
}

/// Each part prefixed with its length (8 bytes, big-endian), so that no two different
/// lists of parts ever produce the same bytes, whatever characters they contain.
fn joined(parts: &[&str]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for part in parts {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes
}

/// A stable, non-reversible key for per-member records (counters, codes), so that
/// neither an email nor a username is stored as a key.
pub fn member_key(user_name: &str) -> String {
    let hash = digest::digest(&digest::SHA256, user_name.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash.as_ref()[..18])
}

/// 128 random bits, URL-safe: opaque ids (usernames, challenge ids, sessions).
pub fn random_token() -> Result<String, secrets::NoRandomness> {
    secrets::random_b64(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SignInSecret {
        SignInSecret::new(&[7u8; 32]).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(SignInSecret::new(&[1u8; 31]).is_err());
    }

    #[test]
    fn a_proof_is_bound_to_client_and_transaction() {
        let s = secret();
        let p = s.proof("client-a", "txn-1");
        assert!(s.verify_proof("client-a", "txn-1", &p));
        assert!(!s.verify_proof("client-b", "txn-1", &p));
        assert!(!s.verify_proof("client-a", "txn-2", &p));
        assert!(!s.verify_proof("client-a", "txn-1", "not base64 !"));
        assert!(!s.verify_proof("client-a\0txn", "1", &s.proof("client-a", "txn\u{0}1")));
    }

    #[test]
    fn code_hashes_differ_by_member_and_challenge() {
        let s = secret();
        let h = s.code_hash("m", "c", "123456");
        assert_eq!(h, s.code_hash("m", "c", "123456"));
        assert_ne!(h, s.code_hash("m2", "c", "123456"));
        assert_ne!(h, s.code_hash("m", "c2", "123456"));
    }
}
