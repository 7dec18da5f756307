//! Access-token verification at the FHIR handlers (member-auth.md §5.3).
//!
//! Order of checks, cheapest and most hostile first: header shape and size, JWT header
//! (`kid` present, no key-reference headers, `alg` pinned to RS256), key lookup in a
//! cached key set, signature and registered claims (jsonwebtoken), then our own claims.
//! Every failure is an [`AuthError`] that maps to the same `401`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fhir::{Reference, ResourceType, is_valid_id};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};

use crate::claims::{AccessClaims, TOKEN_USE_ACCESS, unix_now};
use crate::error::AuthError;
use crate::jwks::JwksSource;
use crate::principal::Principal;
use crate::scopes::ScopeSet;

/// The largest `Authorization` header value we look at. Our tokens are about 1 KB; the
/// cap bounds parsing work for hostile input (member-auth.md §8.A.18).
pub const MAX_AUTHORIZATION_HEADER_BYTES: usize = 8 * 1024;

/// The most clock skew we ever tolerate on `exp`, `nbf` and `iat`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

/// At most this many keys are kept from one key set; a real issuer publishes 1–3.
const MAX_KEYS: usize = 16;

/// Configuration of a [`TokenVerifier`].
#[derive(Clone)]
pub struct VerifierConfig {
    /// The authorization server's issuer URL, matched exactly against `iss`.
    pub issuer: String,
    /// The FHIR base URL, matched exactly against `aud`.
    pub audience: String,
    /// Where the issuer's public keys come from.
    pub jwks: Arc<dyn JwksSource>,
    /// The minimum time between key-set refetches triggered by an unknown `kid`.
    pub refetch_interval: Duration,
    /// Clock skew allowance; values above [`MAX_LEEWAY`] are clamped to it.
    pub leeway: Duration,
}

impl VerifierConfig {
    /// A configuration with the defaults we run with: at most one key-set refetch
    /// every five minutes, and 30 s of clock skew.
    pub fn new(issuer: String, audience: String, jwks: Arc<dyn JwksSource>) -> VerifierConfig {
        VerifierConfig {
            issuer,
            audience,
            jwks,
            refetch_interval: Duration::from_secs(300),
            leeway: Duration::from_secs(30),
        }
    }
}

/// Verifies `Authorization: Bearer` access tokens and turns them into a [`Principal`].
///
/// Cheap to share: hold one per Lambda instance (e.g. in an `Arc`) so the key cache
/// survives across invocations.
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    jwks: Arc<dyn JwksSource>,
    refetch_interval: Duration,
    leeway: Duration,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// Serialises fetches. Holds the time of the last fetch triggered by an unknown
    /// `kid`; `None` until the first one.
    fetch_gate: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    /// Whether any fetch has succeeded (or been attempted by [`TokenVerifier::prime`]).
    loaded: bool,
    last_refetch: Option<Instant>,
}

impl TokenVerifier {
    pub fn new(config: VerifierConfig) -> TokenVerifier {
        TokenVerifier {
            issuer: config.issuer,
            audience: config.audience,
            jwks: config.jwks,
            refetch_interval: config.refetch_interval,
            leeway: config.leeway.min(MAX_LEEWAY),
            keys: RwLock::new(HashMap::new()),
            fetch_gate: Mutex::new(FetchState::default()),
        }
    }

    /// Fills the key cache. Call at cold start so the first request does not pay for the
    /// fetch; if it is not called, the first `verify` fetches instead.
    pub async fn prime(&self) -> Result<(), AuthError> {
        let mut gate = self.fetch_gate.lock().await;
        gate.loaded = true;
        self.load_keys().await
    }

    /// Verifies the raw `Authorization` header value (or its absence).
    ///
    /// Only `Bearer` (any case) is accepted; `?access_token=` query parameters must never
    /// be passed here.
    pub async fn verify(&self, authorization_header: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_token(authorization_header)?;
        let kid = checked_key_id(token)?;
        let key = self.key_for(&kid).await?;
        let claims = self.decode_claims(token, &key)?;
        self.principal_from(claims)
    }

    /// Verifies signature, `iss`, `aud`, `exp`/`nbf` and `sub` like [`Self::verify`], and
    /// returns the claims as `C` without the member-token rules: for tokens this issuer
    /// mints for other callers (backend services), which check their own claims.
    pub async fn verify_claims<C: serde::de::DeserializeOwned>(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<C, AuthError> {
        let token = bearer_token(authorization_header)?;
        let kid = checked_key_id(token)?;
        let key = self.key_for(&kid).await?;
        self.decode_claims(token, &key)
    }

    fn decode_claims<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        key: &DecodingKey,
    ) -> Result<C, AuthError> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = self.leeway.as_secs();
        jsonwebtoken::decode::<C>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| map_jwt_error(e.kind()))
    }

    /// The checks jsonwebtoken does not do: `iat`, `token_use` and our own claims.
    fn principal_from(&self, claims: AccessClaims) -> Result<Principal, AuthError> {
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(0);
        if claims.iat > unix_now().saturating_add(leeway) {
            return Err(AuthError::NotYetValid);
        }
        if claims.token_use != TOKEN_USE_ACCESS {
            return Err(AuthError::NotAnAccessToken);
        }
        if claims.sub.is_empty() {
            return Err(AuthError::MissingClaim("sub"));
        }
        if claims.client_id.is_empty() {
            return Err(AuthError::MissingClaim("client_id"));
        }
        if claims.patient.is_empty() {
            return Err(AuthError::MissingClaim("patient"));
        }
        if !is_valid_id(&claims.patient) {
            return Err(AuthError::InvalidClaim("patient"));
        }
        // fhirUser, when present, must name the same member: a token that says it is
        // for one patient and acts for another is malformed, whoever signed it.
        if let Some(fhir_user) = &claims.fhir_user {
            let same = Reference::parse(fhir_user).is_some_and(|r| {
                r.resource_type == ResourceType::Patient
                    && r.id == claims.patient
                    && r.version.is_none()
            });
            if !same {
                return Err(AuthError::InvalidClaim("fhirUser"));
            }
        }
        Ok(Principal {
            subject: claims.sub,
            client_id: claims.client_id,
            patient: claims.patient,
            scopes: ScopeSet::parse(&claims.scope),
            grant_id: claims.grant_id.filter(|g| !g.is_empty()),
            token_id: claims.jti.filter(|j| !j.is_empty()),
        })
    }

    /// Finds the key for `kid`, refetching the key set at most once per
    /// `refetch_interval` when it is unknown (member-auth.md §8.A.5: a flood of unknown
    /// kids causes at most one fetch per window).
    async fn key_for(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        let mut gate = self.fetch_gate.lock().await;
        // Another task may have refetched while we waited for the gate.
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        if gate.loaded {
            if gate
                .last_refetch
                .is_some_and(|at| at.elapsed() < self.refetch_interval)
            {
                return Err(AuthError::UnknownKey);
            }
            // Count the attempt even if it fails, so a broken endpoint is not hammered.
            gate.last_refetch = Some(Instant::now());
        }
        gate.loaded = true;
        self.load_keys().await?;
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or(AuthError::UnknownKey)
    }

    /// Fetches the key set and replaces the cache. On failure the old keys stay.
    async fn load_keys(&self) -> Result<(), AuthError> {
        let set = self.jwks.fetch().await?;
        let keys = usable_keys(&set);
        if keys.is_empty() {
            tracing::warn!("issuer key set has no usable RS256 signing keys");
        }
        *self.keys.write().await = keys;
        Ok(())
    }
}

/// Extracts the token from `Bearer <token>`, scheme case-insensitive (RFC 7235 §2.1).
fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::MissingToken)?;
    if header.len() > MAX_AUTHORIZATION_HEADER_BYTES {
        return Err(AuthError::TokenTooLarge);
    }
    let (scheme, token) = header
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedHeader)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedHeader);
    }
    let token = token.trim_start_matches(' ');
    // A JWS compact token: three base64url segments. Anything else (spaces, commas for a
    // second credential, padding) is refused before any parsing.
    let valid_chars = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if token.is_empty() || !valid_chars || token.split('.').count() != 3 {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

/// Reads the JWT header and returns its `kid` after the header-level checks.
fn checked_key_id(token: &str) -> Result<String, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::MalformedToken)?;
    if header.jku.is_some()
        || header.x5u.is_some()
        || header.jwk.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(AuthError::ForbiddenHeader);
    }
    if header.alg != Algorithm::RS256 {
        return Err(AuthError::DisallowedAlgorithm);
    }
    match header.kid {
        Some(kid) if !kid.is_empty() => Ok(kid),
        _ => Err(AuthError::MissingKeyId),
    }
}

/// The RSA signing keys of a key set, by `kid`. Keys without a `kid`, marked for
/// encryption, or declared for another algorithm are skipped.
fn usable_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.as_ref().filter(|k| !k.is_empty()) else {
            continue;
        };
        if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
            continue;
        }
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        if matches!(jwk.common.key_algorithm, Some(alg) if alg != KeyAlgorithm::RS256) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), key);
        }
        if keys.len() >= MAX_KEYS {
            break;
        }
    }
    keys
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::DisallowedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            "sub" => "sub",
            _ => "registered claim",
        }),
        ErrorKind::InvalidClaimFormat(_) => AuthError::InvalidClaim("registered claim"),
        _ => AuthError::MalformedToken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_parsing() {
        assert_eq!(bearer_token(None), Err(AuthError::MissingToken));
        assert_eq!(bearer_token(Some("Bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer_token(Some("bearer a.b.c")), Ok("a.b.c"));
        assert_eq!(bearer_token(Some("BEARER  a.b.c")), Ok("a.b.c"));
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Bearer a.b.c, Bearer d.e.f",
            "Bearer a.b.c d",
            "Bearer a.b.c=",
            "Bearer\ta.b.c",
            "Token a.b.c",
        ] {
            assert_eq!(
                bearer_token(Some(bad)),
                Err(AuthError::MalformedHeader),
                "{bad:?}"
            );
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_HEADER_BYTES));
        assert_eq!(bearer_token(Some(&huge)), Err(AuthError::TokenTooLarge));
    }
}
