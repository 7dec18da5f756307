//! `POST /token` with `grant_type=client_credentials` and a JWT client assertion
//! (SMART Backend Services; RFC 7523 §2.2).

use std::time::Duration;

use fhir_store::KeyValueStore;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smart_auth::{TokenSigner, sign_jwt_with};

use crate::clients::{self, BackendClient};
use crate::keys::ClientKeyCache;
use crate::scopes::SystemScopes;
use crate::token::{SystemClaims, TOKEN_USE_SYSTEM};
use crate::{BackendAuthError, JWT_BEARER, LEEWAY_SECS, MAX_ASSERTION_LIFETIME_SECS};

/// Seen assertion `jti`s, kept until the assertion's `exp` (plus leeway).
const JTI_NAMESPACE: &str = "assertion-jti";
/// Backend tokens are short-lived: five minutes, as the SMART guide recommends.
pub const SYSTEM_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The form fields of a client-credentials request.
#[derive(Debug, Clone, Default)]
pub struct GrantRequest<'a> {
    pub grant_type: Option<&'a str>,
    pub client_assertion_type: Option<&'a str>,
    pub client_assertion: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// The token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
}

/// Where the server stands: what `aud` must name and what tokens say.
pub struct Issuance<'a> {
    /// Our issuer = the FHIR base URL (`iss` and `aud` of the token we mint).
    pub issuer: &'a str,
    /// The token endpoint URL, which the assertion's `aud` must equal.
    pub token_endpoint: &'a str,
    pub signer: &'a dyn TokenSigner,
    pub now: i64,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
}

/// Checks the assertion and mints a backend token.
pub async fn client_credentials<K: KeyValueStore + ?Sized>(
    kv: &K,
    keys: &ClientKeyCache,
    at: &Issuance<'_>,
    request: &GrantRequest<'_>,
) -> Result<TokenResponse, BackendAuthError> {
    if request.grant_type != Some("client_credentials") {
        return Err(BackendAuthError::UnsupportedGrantType);
    }
    if request.client_assertion_type != Some(JWT_BEARER) {
        return Err(BackendAuthError::InvalidRequest(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let assertion = request
        .client_assertion
        .ok_or(BackendAuthError::InvalidRequest(
            "client_assertion is required",
        ))?;
    let scope = request
        .scope
        .ok_or(BackendAuthError::InvalidRequest("scope is required"))?;
    let client = authenticate(kv, keys, at, assertion).await?;
    let requested = SystemScopes::parse(scope);
    if requested.is_empty() {
        return Err(BackendAuthError::InvalidScope(
            "ask for system/ read or search scopes",
        ));
    }
    if !client.allowed_scopes().covers(&requested) {
        tracing::info!(target: "audit", client_id = %client.client_id, event = "backend_token.scope_refused", "requested scope beyond registration");
        return Err(BackendAuthError::InvalidScope(
            "a requested scope is beyond the client's registration",
        ));
    }
    let lifetime = SYSTEM_TOKEN_LIFETIME.as_secs();
    let jti = secrets::random_b64(16)
        .map_err(|_| BackendAuthError::Internal("no secure random source".into()))?;
    let claims = SystemClaims {
        iss: at.issuer.to_owned(),
        aud: at.issuer.to_owned(),
        sub: client.client_id.clone(),
        client_id: client.client_id.clone(),
        scope: requested.to_string(),
        provider_npis: client.provider_npis.clone(),
        provider_tins: client.provider_tins.clone(),
        all_members: client.all_members,
        payer: client.payer,
        jti: jti.clone(),
        iat: at.now,
        exp: at
            .now
            .saturating_add(i64::try_from(lifetime).unwrap_or(300)),
        token_use: TOKEN_USE_SYSTEM.to_owned(),
    };
    let access_token = sign_jwt_with(at.signer, &claims).await?;
    tracing::info!(target: "audit", client_id = %client.client_id, token_id = %jti, event = "backend_token.issued", "backend token issued");
    Ok(TokenResponse {
        access_token,
        token_type: "bearer".to_owned(),
        expires_in: lifetime,
        scope: claims.scope,
    })
}

/// Verifies a client assertion and returns the client it authenticates.
pub async fn authenticate<K: KeyValueStore + ?Sized>(
    kv: &K,
    keys: &ClientKeyCache,
    at: &Issuance<'_>,
    assertion: &str,
) -> Result<BackendClient, BackendAuthError> {
    let refuse = BackendAuthError::InvalidClient;
    if assertion.len() > 16 * 1024 {
        return Err(refuse("the assertion is too large"));
    }
    // Header first: the algorithm and key id decide which key may verify, and nothing
    // in the header may point anywhere else.
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| refuse("the assertion header is malformed or names an unknown algorithm"))?;
    if header.jku.is_some()
        || header.x5u.is_some()
        || header.jwk.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(refuse("the assertion header carries a key reference"));
    }
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(refuse("the assertion is not signed RS384 or ES384"));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(refuse("the assertion header has no kid"))?;
    // Which client: read before the signature is checked only to find its keys; the
    // signature check below then binds iss and sub to that client.
    let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode(assertion)
        .map(|data| data.claims)
        .map_err(|_| refuse("the assertion claims are malformed"))?;
    if unverified.iss != unverified.sub {
        return Err(refuse("iss and sub differ"));
    }
    let client = clients::get(kv, &unverified.iss)
        .await?
        .filter(|c| c.enabled)
        .ok_or(refuse("no enabled backend client has this id"))?;
    let key = keys.key_for(&client, &kid, header.alg).await?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[at.token_endpoint]);
    validation.set_issuer(&[client.client_id.as_str()]);
    validation.sub = Some(client.client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    validation.leeway = LEEWAY_SECS.unsigned_abs();
    let claims: AssertionClaims = jsonwebtoken::decode(assertion, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| {
            tracing::info!(target: "audit", client_id = %client.client_id, kind = ?e.kind(), event = "client_assertion.refused", "client assertion refused");
            refuse("the assertion's signature, audience, issuer or expiry is wrong")
        })?;
    if claims.exp > at.now + MAX_ASSERTION_LIFETIME_SECS + LEEWAY_SECS {
        return Err(refuse("the assertion expires more than five minutes ahead"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 1024)
        .ok_or(refuse("the assertion has no jti"))?;
    // One use per jti for as long as the assertion could be accepted. The key is a
    // hash, so any jti the client chooses makes a valid, bounded store key.
    let key = format!(
        "{}/{}",
        client.client_id,
        hex(&Sha256::digest(jti.as_bytes()))
    );
    if !kv
        .insert(
            JTI_NAMESPACE,
            &key,
            &serde_json::Value::Null,
            Some(claims.exp + LEEWAY_SECS),
        )
        .await?
    {
        tracing::warn!(target: "audit", client_id = %client.client_id, event = "client_assertion.replayed", "client assertion jti replayed");
        return Err(refuse("the assertion's jti was already used"));
    }
    Ok(client)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
