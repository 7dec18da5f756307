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
//!
//! Rotation: the secret is a key ring ([`secrets::KeyRing`]). Proofs and code hashes
//! are made with the current key and checked against the current key, then the
//! previous one, so sign-ins in flight during a rotation finish normally.

use std::sync::{Arc, RwLock};

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
/// Clones share their keys, so one [`SignInSecret::install`] reaches every holder.
#[derive(Clone)]
pub struct SignInSecret {
    /// Current key first.
    keys: Arc<RwLock<Arc<Vec<DerivedKeys>>>>,
}

/// The two keys derived from one version of the secret.
struct DerivedKeys {
    proof: hmac::Key,
    code: hmac::Key,
}

impl DerivedKeys {
    fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret);
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive =
            |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&root, label).as_ref());
        Ok(DerivedKeys {
            proof: derive(b"member-signin/as-proof"),
            code: derive(b"member-signin/code-hash"),
        })
    }
}

impl std::fmt::Debug for SignInSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInSecret(..)")
    }
}

impl SignInSecret {
    /// A secret of one key (nothing rotated).
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        Self::from_ring(&secrets::KeyRing::single(secrets::KeyMaterial::new(secret)))
    }

    /// A secret over every key of `ring`, current first.
    pub fn from_ring(ring: &secrets::KeyRing) -> Result<Self, WeakSecret> {
        Ok(SignInSecret {
            keys: Arc::new(RwLock::new(Arc::new(ring.derive(DerivedKeys::new)?))),
        })
    }

    /// Replaces the keys with `ring`'s, for this value and all its clones (a rotation
    /// reached this instance). A ring with a short key is refused and the old keys stay.
    pub fn install(&self, ring: &secrets::KeyRing) -> Result<(), WeakSecret> {
        let keys = ring.derive(DerivedKeys::new)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn keys(&self) -> Arc<Vec<DerivedKeys>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The proof the authorization server puts next to `transaction_id`, bound to the
    /// Cognito app client so that one app's transaction cannot be replayed on another.
    /// Made with the current key.
    pub fn proof(&self, client_id: &str, transaction_id: &str) -> String {
        let keys = self.keys();
        let Some(current) = keys.first() else {
            return String::new();
        };
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &current.proof,
            &joined(&[client_id, transaction_id]),
        ))
    }

    /// Whether `proof` is the proof for this client and transaction under the current
    /// or the previous key (constant time per key).
    pub fn verify_proof(&self, client_id: &str, transaction_id: &str, proof: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(proof) else {
            return false;
        };
        let message = joined(&[client_id, transaction_id]);
        secrets::open_with_any(
            &self.keys(),
            |k| hmac::verify(&k.proof, &message, &tag).map_err(|_| ()),
            (),
        )
        .is_ok()
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
    /// Made with the current key.
    pub fn code_hash(&self, member_key: &str, code_id: &str, code: &str) -> String {
        self.keys()
            .first()
            .map(|k| code_hash_with(k, member_key, code_id, code))
            .unwrap_or_default()
    }

    /// Whether `stored` is the hash of `code` under any key of the ring. Every key is
    /// tried and the results combined with `|`, so the time does not tell which
    /// matched.
    pub fn code_matches(&self, member_key: &str, code_id: &str, code: &str, stored: &str) -> bool {
        self.keys().iter().fold(false, |found, k| {
            found | secrets::constant_time_eq(stored, &code_hash_with(k, member_key, code_id, code))
        })
    }
}

fn code_hash_with(keys: &DerivedKeys, member_key: &str, code_id: &str, code: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(
        &keys.code,
        &joined(&[member_key, code_id, code]),
    ))
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

    fn key(b: u8) -> secrets::KeyMaterial {
        secrets::KeyMaterial::new(vec![b; 32])
    }

    #[test]
    fn proofs_and_codes_from_before_a_rotation_stay_valid_until_the_next_one() {
        use secrets::KeyRing;
        let s = SignInSecret::from_ring(&KeyRing::single(key(1))).unwrap();
        let holder = s.clone();
        let (p1, h1) = (s.proof("c", "t"), s.code_hash("m", "id", "123456"));

        s.install(&KeyRing::new(key(2), [key(1)])).unwrap();
        // Clones share the keys: the other holder sees the rotation too.
        assert!(holder.verify_proof("c", "t", &p1));
        assert!(holder.code_matches("m", "id", "123456", &h1));
        let p2 = holder.proof("c", "t");
        assert_ne!(p1, p2, "new proofs use the new key");

        s.install(&KeyRing::new(key(3), [key(2)])).unwrap();
        assert!(!s.verify_proof("c", "t", &p1));
        assert!(!s.code_matches("m", "id", "123456", &h1));
        assert!(s.verify_proof("c", "t", &p2));
        assert!(!s.code_matches("m", "id", "654321", &s.code_hash("m", "id", "123456")));
    }
}
