//! Sealed paging cursors for `next` links.
//!
//! A cursor carries a store position, so a forged or replayed one could page through
//! someone else's results. Sealing with AES-256-GCM makes it opaque and tamper-evident,
//! and binding it to (client, member, resource type, canonical query) plus an expiry
//! stops replay under another token or another search (member-auth.md §8.E.91).
//!
//! Token layout (then URL-safe base64 without padding):
//! `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The version byte is also the AAD, so a future format cannot be confused with this one.
//!
//! Rotation: the sealer holds a key ring ([`secrets::KeyRing`]). It seals with the
//! current key and opens with the current key, then the previous one, so cursors
//! handed out just before a rotation keep working until they expire.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use fhir::clock::unix_seconds;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longer tokens are refused before any decoding; real ones are a few hundred bytes.
pub const MAX_CURSOR_TOKEN_LEN: usize = 4096;
/// The shortest secret [`CursorSealer::from_secret`] accepts.
pub const MIN_SECRET_LEN: usize = 32;
const HKDF_SALT: &[u8] = b"smart-auth/cursor/v1";
const HKDF_INFO: &[u8] = b"aes-256-gcm paging cursor key";

/// What a cursor may be used for. Opening with any other binding fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorBinding {
    pub client_id: String,
    pub patient: String,
    pub resource_type: String,
    /// The canonical search query (sorted parameters, paging parameters removed).
    pub query: String,
}

/// A page position inside a search, with its binding and expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub binding: CursorBinding,
    /// Opaque store sort key to continue after.
    pub position: String,
    /// Unix seconds after which the cursor is refused.
    pub expires_at: i64,
}

/// Why a cursor was refused. All variants answer `400`; the caller is told only that the
/// paging link is invalid or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("paging cursor is malformed")]
    Malformed,
    #[error("paging cursor failed authentication")]
    Tampered,
    #[error("paging cursor has expired")]
    Expired,
    #[error("paging cursor belongs to another search, app or member")]
    WrongBinding,
    #[error("cursor secret is shorter than 32 bytes")]
    WeakSecret,
    #[error("cursor could not be sealed")]
    Seal,
}

impl CursorError {
    /// The HTTP status for a request carrying a refused cursor.
    pub fn status(&self) -> u16 {
        400
    }
}

/// Seals and opens [`Cursor`]s with AES-256-GCM: seals with the ring's current key,
/// opens with any key of the ring (current first).
pub struct CursorSealer {
    /// Current key first. Replaced whole by [`CursorSealer::install`] (a rotation);
    /// readers take the `Arc` and never hold the lock while sealing.
    keys: RwLock<Arc<Vec<LessSafeKey>>>,
}

impl std::fmt::Debug for CursorSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSealer(<key>)")
    }
}

impl CursorSealer {
    pub fn new(key: [u8; 32]) -> CursorSealer {
        // AES-256-GCM accepts every 32-byte key; should the library refuse anyway, the
        // sealer has no key and every seal fails with `CursorError::Seal`, no panic.
        let keys = UnboundKey::new(&AES_256_GCM, &key)
            .ok()
            .map(LessSafeKey::new)
            .into_iter()
            .collect();
        CursorSealer {
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    /// Derives the key from a configured secret (e.g. from Secrets Manager) with
    /// HKDF-SHA256, so the secret can be any length ≥ 32 bytes and is never used raw.
    pub fn from_secret(secret: &[u8]) -> Result<CursorSealer, CursorError> {
        Ok(CursorSealer::new(derive_key(secret)?))
    }

    /// A sealer over every key of `ring` (each derived as in [`CursorSealer::from_secret`]).
    pub fn from_ring(ring: &secrets::KeyRing) -> Result<CursorSealer, CursorError> {
        let sealer = CursorSealer {
            keys: RwLock::new(Arc::new(Vec::new())),
        };
        sealer.install(ring)?;
        Ok(sealer)
    }

    /// Replaces the keys with `ring`'s (a rotation reached this instance). A ring with
    /// a key that is too short is refused as a whole and the old keys stay.
    pub fn install(&self, ring: &secrets::KeyRing) -> Result<(), CursorError> {
        let keys = ring
            .derive(derive_key)?
            .into_iter()
            .map(|key| {
                UnboundKey::new(&AES_256_GCM, &key)
                    .map(LessSafeKey::new)
                    .map_err(|_| CursorError::Seal)
            })
            .collect::<Result<Vec<_>, _>>()?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn keys(&self) -> Arc<Vec<LessSafeKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Seals `cursor` with a fresh random nonce, under the current key.
    pub fn seal(&self, cursor: &Cursor) -> Result<String, CursorError> {
        let keys = self.keys();
        let key = keys.first().ok_or(CursorError::Seal)?;
        let mut nonce_bytes = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce_bytes).map_err(|_| CursorError::Seal)?;
        let mut in_out = serde_json::to_vec(cursor).map_err(|_| CursorError::Seal)?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from([VERSION]),
            &mut in_out,
        )
        .map_err(|_| CursorError::Seal)?;
        let mut token = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        token.push(VERSION);
        token.extend_from_slice(&nonce_bytes);
        token.extend_from_slice(&in_out);
        Ok(URL_SAFE_NO_PAD.encode(token))
    }

    /// Opens a token produced by [`CursorSealer::seal`], requiring that it is authentic,
    /// unexpired at `now`, and bound to exactly `expected`.
    pub fn open(
        &self,
        token: &str,
        expected: &CursorBinding,
        now: SystemTime,
    ) -> Result<Cursor, CursorError> {
        if token.len() > MAX_CURSOR_TOKEN_LEN {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| CursorError::Malformed)?;
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(CursorError::Malformed);
        };
        if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CursorError::Malformed);
        }
        let (nonce_bytes, sealed) = rest.split_at(NONCE_LEN);
        let nonce_bytes: [u8; NONCE_LEN] =
            nonce_bytes.try_into().map_err(|_| CursorError::Malformed)?;
        // Current key first, then the previous one: cursors sealed just before a
        // rotation stay valid until they expire.
        let plain = secrets::open_with_any(
            &self.keys(),
            |key| {
                let mut in_out = sealed.to_vec();
                let nonce = Nonce::assume_unique_for_key(nonce_bytes);
                key.open_in_place(nonce, Aad::from([VERSION]), &mut in_out)
                    .map(|plain| plain.to_vec())
                    .map_err(|_| CursorError::Tampered)
            },
            CursorError::Seal,
        )?;
        // Authentic, so the payload is ours; a parse failure means a format change.
        let cursor: Cursor = serde_json::from_slice(&plain).map_err(|_| CursorError::Malformed)?;
        if cursor.binding != *expected {
            return Err(CursorError::WrongBinding);
        }
        if unix_seconds(now) >= cursor.expires_at {
            return Err(CursorError::Expired);
        }
        Ok(cursor)
    }
}

/// The AES key for a configured secret: HKDF-SHA256 over a secret of at least
/// [`MIN_SECRET_LEN`] bytes.
fn derive_key(secret: &[u8]) -> Result<[u8; 32], CursorError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(CursorError::WeakSecret);
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(secret);
    let mut key = [0u8; 32];
    prk.expand(&[HKDF_INFO], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .map_err(|_| CursorError::Seal)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: i64 = 1_800_000_000;

    fn at(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    fn binding() -> CursorBinding {
        CursorBinding {
            client_id: "app-a".into(),
            patient: "p1".into(),
            resource_type: "ExplanationOfBenefit".into(),
            query: "_count=10&type=pharmacy".into(),
        }
    }

    fn cursor() -> Cursor {
        Cursor {
            binding: binding(),
            position: "2026-01-01T00:00:00.000Z#eob-7".into(),
            expires_at: NOW + 600,
        }
    }

    fn sealer() -> CursorSealer {
        CursorSealer::new([7u8; 32])
    }

    #[test]
    fn round_trip() {
        let token = sealer().seal(&cursor()).unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(sealer().open(&token, &binding(), at(NOW)), Ok(cursor()));
    }

    #[test]
    fn sealed_cursor_reveals_nothing_and_nonces_differ() {
        let a = sealer().seal(&cursor()).unwrap();
        let b = sealer().seal(&cursor()).unwrap();
        assert_ne!(a, b);
        let raw = URL_SAFE_NO_PAD.decode(&a).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("p1") && !text.contains("eob-7") && !text.contains("app-a"));
    }

    #[test]
    fn cursor_tampering_flipped_byte_is_rejected() {
        let token = sealer().seal(&cursor()).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 1..raw.len() {
            let mut flipped = raw.clone();
            flipped[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&flipped);
            assert_eq!(
                sealer().open(&forged, &binding(), at(NOW)),
                Err(CursorError::Tampered),
                "byte {i}"
            );
        }
        let mut version = raw.clone();
        version[0] ^= 0x01;
        let forged = URL_SAFE_NO_PAD.encode(&version);
        assert_eq!(
            sealer().open(&forged, &binding(), at(NOW)),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn cursor_sealed_under_another_key_is_rejected() {
        let token = CursorSealer::new([8u8; 32]).seal(&cursor()).unwrap();
        assert_eq!(
            sealer().open(&token, &binding(), at(NOW)),
            Err(CursorError::Tampered)
        );
    }

    #[test]
    fn cursor_replayed_under_another_member_client_query_or_type_is_rejected() {
        let token = sealer().seal(&cursor()).unwrap();
        let mut other_member = binding();
        other_member.patient = "q1".into();
        let mut other_client = binding();
        other_client.client_id = "app-b".into();
        let mut other_query = binding();
        other_query.query = "_count=10&type=oral".into();
        let mut other_type = binding();
        other_type.resource_type = "Coverage".into();
        for expected in [other_member, other_client, other_query, other_type] {
            assert_eq!(
                sealer().open(&token, &expected, at(NOW)),
                Err(CursorError::WrongBinding)
            );
        }
    }

    #[test]
    fn expired_cursor_is_rejected() {
        let token = sealer().seal(&cursor()).unwrap();
        assert!(sealer().open(&token, &binding(), at(NOW + 599)).is_ok());
        assert_eq!(
            sealer().open(&token, &binding(), at(NOW + 600)),
            Err(CursorError::Expired)
        );
        assert_eq!(
            sealer().open(&token, &binding(), at(NOW + 86_400)),
            Err(CursorError::Expired)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for junk in [
            "",
            "!!!!",
            "AQ",
            &"A".repeat(MAX_CURSOR_TOKEN_LEN + 1),
            "AQAAAAAAAAAAAAAAAA==",
        ] {
            assert_eq!(
                sealer().open(junk, &binding(), at(NOW)),
                Err(CursorError::Malformed),
                "{junk}"
            );
        }
    }

    #[test]
    fn secrets_are_derived_and_must_be_long_enough() {
        assert_eq!(
            CursorSealer::from_secret(&[1u8; 31]).unwrap_err(),
            CursorError::WeakSecret
        );
        let a = CursorSealer::from_secret(b"0123456789abcdef0123456789abcdef-long-secret").unwrap();
        let b = CursorSealer::from_secret(b"0123456789abcdef0123456789abcdef-long-secret").unwrap();
        let token = a.seal(&cursor()).unwrap();
        assert_eq!(b.open(&token, &binding(), at(NOW)), Ok(cursor()));
        let c = CursorSealer::from_secret(&[2u8; 32]).unwrap();
        assert_eq!(
            c.open(&token, &binding(), at(NOW)),
            Err(CursorError::Tampered)
        );
        assert_eq!(CursorError::Expired.status(), 400);
    }

    fn material(b: u8) -> secrets::KeyMaterial {
        secrets::KeyMaterial::new(vec![b; 40])
    }

    #[test]
    fn a_rotation_keeps_previous_cursors_until_the_key_after_next() {
        use secrets::KeyRing;
        let sealer = CursorSealer::from_ring(&KeyRing::single(material(1))).unwrap();
        let v1 = sealer.seal(&cursor()).unwrap();

        sealer
            .install(&KeyRing::new(material(2), [material(1)]))
            .unwrap();
        assert_eq!(sealer.open(&v1, &binding(), at(NOW)), Ok(cursor()));
        let v2 = sealer.seal(&cursor()).unwrap();
        // New cursors are sealed with the new key: a v1-only sealer cannot open them.
        let v1_only = CursorSealer::from_ring(&KeyRing::single(material(1))).unwrap();
        assert_eq!(
            v1_only.open(&v2, &binding(), at(NOW)),
            Err(CursorError::Tampered)
        );

        sealer
            .install(&KeyRing::new(material(3), [material(2)]))
            .unwrap();
        assert_eq!(
            sealer.open(&v1, &binding(), at(NOW)),
            Err(CursorError::Tampered)
        );
        assert_eq!(sealer.open(&v2, &binding(), at(NOW)), Ok(cursor()));
        // Expiry and binding still apply to a cursor opened with the previous key.
        assert_eq!(
            sealer.open(&v2, &binding(), at(NOW + 600)),
            Err(CursorError::Expired)
        );
    }

    #[test]
    fn a_ring_with_a_short_key_is_refused_and_the_old_keys_stay() {
        use secrets::{KeyMaterial, KeyRing};
        let sealer = CursorSealer::from_ring(&KeyRing::single(material(1))).unwrap();
        let token = sealer.seal(&cursor()).unwrap();
        let weak = KeyRing::new(KeyMaterial::new(vec![2; 8]), [material(1)]);
        assert_eq!(sealer.install(&weak), Err(CursorError::WeakSecret));
        assert_eq!(sealer.open(&token, &binding(), at(NOW)), Ok(cursor()));
    }
}
