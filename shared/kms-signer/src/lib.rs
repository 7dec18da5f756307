//! [`TokenSigner`] on AWS KMS: the authorization server's RS256 key never leaves KMS.
//!
//! * **Signing** is `kms:Sign` with `RSASSA_PKCS1_V1_5_SHA_256`. KMS accepts a `RAW`
//!   message of at most 4096 bytes and hashes it itself; longer inputs are hashed here
//!   and sent as a `DIGEST`. Both give the very same RS256 signature. `RAW` is used
//!   whenever it fits because it is what every token we mint needs (a few hundred
//!   bytes) and what moto implements, so the tests cover the path production takes;
//!   `DIGEST` only keeps an unusually long scope list from failing.
//! * **The public key** is read once per cold start with `kms:GetPublicKey` (a DER
//!   SubjectPublicKeyInfo), checked to be an RSA signing key of the expected algorithm,
//!   and published as a JWK whose `kid` is its RFC 7638 thumbprint, so the `kid` is
//!   stable for the key whatever the function instance.
//!
//! Nothing here logs token contents: a failed `Sign` logs the KMS error code only.

/// The KMS client, re-exported so callers build one without linking the SDK themselves.
pub use aws_sdk_kms::Client as KmsClient;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, KeyAlgorithm, PublicKeyUse, RSAKeyParameters,
    RSAKeyType, ThumbprintHash,
};
use smart_auth::{BoxFuture, IssuerError, JwkSet, TokenSigner};

/// The largest message KMS signs as `RAW`.
pub const MAX_RAW_MESSAGE_BYTES: usize = 4096;

/// The one algorithm we sign with (RS256).
const ALGORITHM: SigningAlgorithmSpec = SigningAlgorithmSpec::RsassaPkcs1V15Sha256;

/// Why the signer could not start.
#[derive(Debug, thiserror::Error)]
pub enum KmsSignerError {
    #[error("kms:GetPublicKey failed: {0}")]
    GetPublicKey(String),
    #[error("the KMS key is not an RSA signing key that allows RSASSA_PKCS1_V1_5_SHA_256")]
    WrongKeyKind,
    #[error("the KMS public key is not a valid RSA SubjectPublicKeyInfo")]
    InvalidPublicKey,
    #[error("the JWK thumbprint could not be computed")]
    Thumbprint,
}

/// Signs with one asymmetric KMS key (`RSA_2048`, `SIGN_VERIFY`).
#[derive(Debug, Clone)]
pub struct KmsSigner {
    client: Client,
    /// The KMS key id, ARN or alias (not the JWK `kid`).
    kms_key_id: String,
    jwk: Jwk,
    kid: String,
}

impl KmsSigner {
    /// Reads the public half of `key_id` (a key id, ARN or alias) and checks its kind.
    /// Call once per cold start: the result is the signer and the JWK to publish.
    pub async fn connect(
        client: Client,
        key_id: impl Into<String>,
    ) -> Result<Self, KmsSignerError> {
        let kms_key_id = key_id.into();
        let out = client
            .get_public_key()
            .key_id(&kms_key_id)
            .send()
            .await
            .map_err(|e| KmsSignerError::GetPublicKey(error_code(&e.into_service_error())))?;
        let usable = out.key_usage == Some(KeyUsageType::SignVerify)
            && out.signing_algorithms().contains(&ALGORITHM);
        if !usable {
            return Err(KmsSignerError::WrongKeyKind);
        }
        let der = out.public_key.ok_or(KmsSignerError::InvalidPublicKey)?;
        let jwk = public_jwk(der.as_ref())?;
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or(KmsSignerError::Thumbprint)?;
        Ok(KmsSigner {
            client,
            kms_key_id,
            jwk,
            kid,
        })
    }

    /// The key set to publish at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    async fn sign_input(&self, signing_input: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let (message_type, message) = kms_message(signing_input);
        let out = self
            .client
            .sign()
            .key_id(&self.kms_key_id)
            .signing_algorithm(ALGORITHM)
            .message_type(message_type)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(|e| {
                tracing::error!(code = %error_code(&e.into_service_error()), event = "kms.sign_failed", "kms:Sign failed");
                IssuerError::Signing
            })?;
        out.signature
            .map(Blob::into_inner)
            .filter(|s| !s.is_empty())
            .ok_or(IssuerError::Signing)
    }
}

impl TokenSigner for KmsSigner {
    fn key_id(&self) -> &str {
        &self.kid
    }

    fn sign<'a>(&'a self, signing_input: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, IssuerError>> {
        Box::pin(self.sign_input(signing_input))
    }
}

/// What to send to `kms:Sign` for this JWS signing input: the input itself while it
/// fits `RAW`, else its SHA-256 as a `DIGEST`.
pub fn kms_message(signing_input: &[u8]) -> (MessageType, Vec<u8>) {
    if signing_input.len() <= MAX_RAW_MESSAGE_BYTES {
        (MessageType::Raw, signing_input.to_vec())
    } else {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signing_input);
        (MessageType::Digest, digest.as_ref().to_vec())
    }
}

/// The RS256 JWK (with `kid` = RFC 7638 SHA-256 thumbprint) of a DER
/// SubjectPublicKeyInfo, as `kms:GetPublicKey` returns it.
pub fn public_jwk(spki_der: &[u8]) -> Result<Jwk, KmsSignerError> {
    // aws-lc-rs parses (and range-checks) both SubjectPublicKeyInfo and PKCS#1.
    let public = aws_lc_rs::rsa::PublicKey::from_der(spki_der)
        .map_err(|_| KmsSignerError::InvalidPublicKey)?;
    let mut jwk = Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::RS256),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }),
    };
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| KmsSignerError::Thumbprint)?;
    jwk.common.key_id = Some(kid);
    Ok(jwk)
}

/// The service error's code for logs (never the message, which may echo input).
fn error_code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("unknown").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;

    #[test]
    fn short_inputs_go_raw_and_long_ones_as_a_sha256_digest() {
        let (kind, message) = kms_message(b"header.payload");
        assert_eq!(kind, MessageType::Raw);
        assert_eq!(message, b"header.payload");
        let long = vec![b'a'; MAX_RAW_MESSAGE_BYTES + 1];
        let (kind, message) = kms_message(&long);
        assert_eq!(kind, MessageType::Digest);
        assert_eq!(message.len(), 32);
        assert_eq!(
            kms_message(&long[..MAX_RAW_MESSAGE_BYTES]).0,
            MessageType::Raw
        );
    }

    #[test]
    fn the_jwk_of_an_spki_matches_the_key_and_has_a_thumbprint_kid() {
        let Ok(pair) = KeyPair::generate(KeySize::Rsa2048) else {
            panic!("key generation")
        };
        let Ok(spki) = pair.public_key().as_der() else {
            panic!("spki encoding")
        };
        let Ok(jwk) = public_jwk(spki.as_ref()) else {
            panic!("jwk")
        };
        let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
            panic!("not RSA")
        };
        let n = URL_SAFE_NO_PAD.encode(
            pair.public_key()
                .modulus()
                .big_endian_without_leading_zero(),
        );
        assert_eq!(rsa.n, n);
        assert_eq!(rsa.e, "AQAB");
        assert_eq!(jwk.common.key_id.as_deref().map(str::len), Some(43));
    }

    #[test]
    fn garbage_is_not_a_public_key() {
        assert!(matches!(
            public_jwk(b"not der"),
            Err(KmsSignerError::InvalidPublicKey)
        ));
    }
}
