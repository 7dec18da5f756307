//! The access token a backend client gets, and its verification at the bulk API.

use serde::{Deserialize, Serialize};
use smart_auth::{AuthError, TokenVerifier};

use crate::scopes::SystemScopes;

/// `token_use` of a backend token. The member API requires `access`, so a backend
/// token is refused there; [`verify_system`] requires this, so a member token is
/// refused on the bulk endpoints.
pub const TOKEN_USE_SYSTEM: &str = "system";

/// Claims of a backend access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemClaims {
    pub iss: String,
    pub aud: String,
    /// The client id (a backend client acts for itself, not for a person).
    pub sub: String,
    pub client_id: String,
    /// The granted `system/` scopes.
    pub scope: String,
    #[serde(default)]
    pub provider_npis: Vec<String>,
    #[serde(default)]
    pub provider_tins: Vec<String>,
    #[serde(default)]
    pub all_members: bool,
    /// Registered as another health plan (Payer-to-Payer `$member-match`).
    #[serde(default)]
    pub payer: bool,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub token_use: String,
}

/// The verified caller of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPrincipal {
    pub client_id: String,
    pub scopes: SystemScopes,
    pub provider_npis: Vec<String>,
    pub provider_tins: Vec<String>,
    pub all_members: bool,
    /// Registered as another health plan: may call `$member-match`.
    pub payer: bool,
    /// The token's `jti`, for the audit log.
    pub token_id: String,
}

/// Verifies a backend token (signature, issuer, audience, expiry by `verifier`, then
/// `token_use` and the client) and returns its principal.
pub async fn verify_system(
    verifier: &TokenVerifier,
    authorization_header: Option<&str>,
) -> Result<SystemPrincipal, AuthError> {
    let claims: SystemClaims = verifier.verify_claims(authorization_header).await?;
    if claims.token_use != TOKEN_USE_SYSTEM {
        return Err(AuthError::NotAnAccessToken);
    }
    if claims.client_id.is_empty() || claims.sub != claims.client_id {
        return Err(AuthError::InvalidClaim("client_id"));
    }
    Ok(SystemPrincipal {
        client_id: claims.client_id,
        scopes: SystemScopes::parse(&claims.scope),
        provider_npis: claims.provider_npis,
        provider_tins: claims.provider_tins,
        all_members: claims.all_members,
        payer: claims.payer,
        token_id: claims.jti,
    })
}
