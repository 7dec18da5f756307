//! A token issuer for the local runner and tests: an RSA key on disk and RS256 minting.
//!
//! Production signs with a KMS key behind the same [`TokenSigner`] shape; this module
//! is what runs when there is no AWS account. The key file is created once with `0600`
//! permissions and reused, so tokens survive restarts of the local runner.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
    RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use serde::Serialize;

use crate::claims::AccessClaims;
use crate::jwks::BoxFuture;

/// The key file name inside the directory given to [`LocalIssuer::load_or_create`].
pub const KEY_FILE_NAME: &str = "local-issuer-rsa.pem";

const PEM_LABEL: &str = "PRIVATE KEY";

/// Why the local issuer could not start or sign.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {0} is readable by group or others; run `chmod 600` on it")]
    InsecureKeyFile(PathBuf),
    #[error("key file {0} is not a PKCS#8 RSA private key in PEM form")]
    InvalidKey(PathBuf),
    #[error("RSA key generation failed")]
    KeyGeneration,
    #[error("signing failed")]
    Signing,
    #[error("claims could not be encoded: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Something that can produce an RS256 signature under a published key id.
///
/// The local issuer implements it with an in-process key; the authorization server will
/// implement it with `kms:Sign`, which is why signing is asynchronous.
pub trait TokenSigner: Send + Sync {
    /// The `kid` that verifiers find in the published key set.
    fn key_id(&self) -> &str;
    /// An RSASSA-PKCS1-v1_5 SHA-256 signature over `signing_input`.
    fn sign<'a>(&'a self, signing_input: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, IssuerError>>;
}

/// Mints a compact JWS for `claims` with any [`TokenSigner`].
pub async fn mint_with(
    signer: &dyn TokenSigner,
    claims: &AccessClaims,
) -> Result<String, IssuerError> {
    let input = signing_input(signer.key_id(), claims)?;
    let signature = signer.sign(input.as_bytes()).await?;
    Ok(finish(input, &signature))
}

/// Mints an RS256 JWS with header `typ` = `JWT` over any claim set: the OpenID Connect
/// ID token, whose claims are not an access token's.
pub async fn sign_jwt_with<C: Serialize + ?Sized>(
    signer: &dyn TokenSigner,
    claims: &C,
) -> Result<String, IssuerError> {
    let header = serde_json::to_vec(&JwsHeader {
        alg: "RS256",
        typ: "JWT",
        kid: signer.key_id(),
    })?;
    let payload = serde_json::to_vec(claims)?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = signer.sign(input.as_bytes()).await?;
    Ok(finish(input, &signature))
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    /// RFC 9068 media type for JWT access tokens.
    typ: &'static str,
    kid: &'a str,
}

fn signing_input(kid: &str, claims: &AccessClaims) -> Result<String, IssuerError> {
    let header = serde_json::to_vec(&JwsHeader {
        alg: "RS256",
        typ: "at+jwt",
        kid,
    })?;
    let payload = serde_json::to_vec(claims)?;
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    ))
}

fn finish(mut signing_input: String, signature: &[u8]) -> String {
    signing_input.push('.');
    signing_input.push_str(&URL_SAFE_NO_PAD.encode(signature));
    signing_input
}

/// The local authorization server's signing identity.
pub struct LocalIssuer {
    issuer: String,
    audience: String,
    key: KeyPair,
    jwk: Jwk,
    kid: String,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl LocalIssuer {
    /// Loads `dir/local-issuer-rsa.pem`, or generates an RSA-2048 key there on first start.
    ///
    /// The file is written to a temporary name and hard-linked into place, so two
    /// processes starting together end up sharing one key instead of overwriting each
    /// other's. An existing file that group or others can read is refused, as ssh does.
    pub fn load_or_create(
        dir: &Path,
        issuer: String,
        audience: String,
    ) -> Result<LocalIssuer, IssuerError> {
        let path = dir.join(KEY_FILE_NAME);
        let key = match read_key(&path)? {
            Some(key) => key,
            None => create_key(dir, &path)?,
        };
        LocalIssuer::from_key_pair(key, issuer, audience)
    }

    fn from_key_pair(
        key: KeyPair,
        issuer: String,
        audience: String,
    ) -> Result<LocalIssuer, IssuerError> {
        let public = key.public_key();
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
        // RFC 7638 thumbprint: stable for the key, whatever the file or process.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| IssuerError::KeyGeneration)?;
        jwk.common.key_id = Some(kid.clone());
        Ok(LocalIssuer {
            issuer,
            audience,
            key,
            jwk,
            kid,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set to publish at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// [`LocalIssuer::jwks`] as JSON.
    pub fn jwks_json(&self) -> serde_json::Value {
        serde_json::to_value(self.jwks()).unwrap_or_else(|_| serde_json::json!({ "keys": [] }))
    }

    /// Signs `claims` as an RS256 access token. Empty `iss` and `aud` are filled with this
    /// issuer's values; non-empty ones are kept (tests use that to forge wrong issuers).
    pub fn mint(&self, claims: &AccessClaims) -> Result<String, IssuerError> {
        let mut claims = claims.clone();
        if claims.iss.is_empty() {
            claims.iss = self.issuer.clone();
        }
        if claims.aud.is_empty() {
            claims.aud = self.audience.clone();
        }
        if claims.jti.is_none() {
            claims.jti = secrets::random_b64(16).ok();
        }
        let input = signing_input(&self.kid, &claims)?;
        let signature = self.sign_bytes(input.as_bytes())?;
        Ok(finish(input, &signature))
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .map_err(|_| IssuerError::Signing)?;
        Ok(signature)
    }
}

impl TokenSigner for LocalIssuer {
    fn key_id(&self) -> &str {
        &self.kid
    }

    fn sign<'a>(&'a self, signing_input: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, IssuerError>> {
        Box::pin(async move { self.sign_bytes(signing_input) })
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> IssuerError + '_ {
    move |source| IssuerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads an existing key; `Ok(None)` when there is no file yet.
fn read_key(path: &Path) -> Result<Option<KeyPair>, IssuerError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    check_permissions(path)?;
    let der = pem_decode(&text).ok_or_else(|| IssuerError::InvalidKey(path.to_owned()))?;
    KeyPair::from_pkcs8(&der)
        .map(Some)
        .map_err(|_| IssuerError::InvalidKey(path.to_owned()))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), IssuerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(IssuerError::InsecureKeyFile(path.to_owned()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), IssuerError> {
    Ok(())
}

fn create_key(dir: &Path, path: &Path) -> Result<KeyPair, IssuerError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| IssuerError::KeyGeneration)?;
    let der = key.as_der().map_err(|_| IssuerError::KeyGeneration)?;
    let pem = pem_encode(der.as_ref());

    let suffix = secrets::random_b64(9).map_err(|_| IssuerError::KeyGeneration)?;
    let temp = dir.join(format!(".{KEY_FILE_NAME}.{suffix}.tmp"));
    write_private(&temp, pem.as_bytes())?;
    let linked = fs::hard_link(&temp, path);
    // The temporary name is only a staging area; losing it is harmless.
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(key),
        // Another process won the race: use its key so both mint verifiable tokens.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path)?.ok_or_else(|| IssuerError::InvalidKey(path.to_owned()))
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IssuerError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

fn pem_encode(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    out
}

fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let body = text.trim().strip_prefix(&begin)?.strip_suffix(&end)?;
    let b64: String = body.split_ascii_whitespace().collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn issuer(dir: &Path) -> LocalIssuer {
        LocalIssuer::load_or_create(
            dir,
            "https://as.local".into(),
            "https://fhir.local/r4".into(),
        )
        .unwrap()
    }

    #[test]
    fn key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = issuer(dir.path());
        let second = issuer(dir.path());
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwks(), second.jwks());
        let pem = fs::read_to_string(dir.path().join(KEY_FILE_NAME)).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // Only the key file remains; the staging file is gone.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private_and_loose_permissions_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        issuer(dir.path());
        let path = dir.path().join(KEY_FILE_NAME);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = LocalIssuer::load_or_create(dir.path(), "i".into(), "a".into()).unwrap_err();
        assert!(matches!(err, IssuerError::InsecureKeyFile(_)));
    }

    #[test]
    fn corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        write_private(&dir.path().join(KEY_FILE_NAME), b"not a key").unwrap();
        let err = LocalIssuer::load_or_create(dir.path(), "i".into(), "a".into()).unwrap_err();
        assert!(matches!(err, IssuerError::InvalidKey(_)));
    }

    #[test]
    fn jwks_publishes_one_rs256_signing_key_with_thumbprint_kid() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(dir.path());
        let json = iss.jwks_json();
        let key = &json["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], iss.kid());
        assert_eq!(key["e"], "AQAB");
        assert!(
            key.get("d").is_none(),
            "private exponent must never be published"
        );
        // 2048-bit modulus: 256 bytes, 342 base64url characters.
        assert_eq!(key["n"].as_str().unwrap().len(), 342);
        let mut unkeyed = iss.jwks().keys[0].clone();
        unkeyed.common = CommonParameters::default();
        assert_eq!(
            unkeyed.thumbprint(ThumbprintHash::SHA256).unwrap(),
            iss.kid()
        );
    }

    #[test]
    fn minted_tokens_verify_with_jsonwebtoken_and_fill_iss_and_aud() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(dir.path());
        let claims =
            AccessClaims::for_member("p1", "app-a", "patient/*.rs", Duration::from_secs(300));
        let token = iss.mint(&claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(iss.kid()));
        let key = jsonwebtoken::DecodingKey::from_jwk(&iss.jwks().keys[0]).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["https://fhir.local/r4"]);
        validation.set_issuer(&["https://as.local"]);
        let decoded = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation).unwrap();
        assert_eq!(decoded.claims.iss, "https://as.local");
        assert_eq!(decoded.claims.aud, "https://fhir.local/r4");
        assert_eq!(decoded.claims.patient, "p1");
    }

    #[tokio::test]
    async fn mint_with_a_token_signer_matches_the_direct_path() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(dir.path());
        let mut claims =
            AccessClaims::for_member("p1", "app-a", "patient/*.rs", Duration::from_secs(300));
        claims.iss = iss.issuer().to_owned();
        claims.aud = iss.audience().to_owned();
        let via_trait = mint_with(&iss, &claims).await.unwrap();
        let direct = iss.mint(&claims).unwrap();
        // PKCS#1 v1.5 signatures are deterministic, so the two tokens are identical.
        assert_eq!(via_trait, direct);
    }
}
