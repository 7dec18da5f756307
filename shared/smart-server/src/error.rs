//! Errors: [`ServerError`] for our own failures, [`OAuthError`] for what RFC 6749 lets a
//! client see.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::respond::{json_response, no_store};

/// A failure inside the server (store, signer, random source) or a refused registration.
/// Clients never see the detail: it is logged, and they get `server_error` or a
/// generic page.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("no secure random source")]
    Random(#[from] secrets::NoRandomness),
    #[error("the store failed: {0}")]
    Store(#[from] fhir_store::StoreError),
    #[error("the grant store failed: {0}")]
    Grant(#[from] member_consent::GrantError),
    #[error("signing failed: {0}")]
    Signing(#[from] smart_auth::IssuerError),
    #[error("the identity provider failed: {0}")]
    SignIn(#[from] member_signin::SignInError),
    #[error("page rendering failed: {0}")]
    Render(#[from] askama::Error),
    #[error("invalid app registration: {0}")]
    InvalidApp(&'static str),
    #[error("{0}")]
    Internal(String),
}

/// The RFC 6749 §5.2 error codes we answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    ServerError,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::ServerError => "server_error",
        }
    }
}

/// An error a token, revocation or introspection request gets: a code and a fixed,
/// safe description (never store, signer or identity-provider text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: &'static str,
}

impl OAuthError {
    pub const fn new(code: OAuthCode, description: &'static str) -> OAuthError {
        OAuthError { code, description }
    }

    pub const fn invalid_request(description: &'static str) -> OAuthError {
        OAuthError::new(OAuthCode::InvalidRequest, description)
    }

    pub const fn invalid_grant(description: &'static str) -> OAuthError {
        OAuthError::new(OAuthCode::InvalidGrant, description)
    }

    pub const fn invalid_client() -> OAuthError {
        OAuthError::new(OAuthCode::InvalidClient, "client authentication failed")
    }

    /// `401` for a failed client authentication (with a Basic challenge, RFC 6749
    /// §5.2), `500` for our faults, `400` for everything else.
    pub fn status(&self) -> StatusCode {
        match self.code {
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn response(&self) -> Response<Bytes> {
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut response = json_response(self.status(), &body);
        no_store(&mut response);
        if self.code == OAuthCode::InvalidClient {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="token""#),
            );
        }
        response
    }
}

impl From<ServerError> for OAuthError {
    fn from(error: ServerError) -> OAuthError {
        tracing::error!(error = %error, "authorization server fault");
        OAuthError::new(
            OAuthCode::ServerError,
            "the server could not complete the request",
        )
    }
}

impl From<fhir_store::StoreError> for OAuthError {
    fn from(error: fhir_store::StoreError) -> OAuthError {
        ServerError::from(error).into()
    }
}
