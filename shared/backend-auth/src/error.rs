/// Why a backend request was refused. Each maps to one RFC 6749 error code; the text
/// is for logs and operators and names no key material or claim values.
#[derive(Debug, thiserror::Error)]
pub enum BackendAuthError {
    /// The request is malformed (missing or repeated parameter, wrong assertion type).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Only `client_credentials` is served here.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// The assertion failed a check; `reason` says which (logged, never returned).
    #[error("client authentication failed: {0}")]
    InvalidClient(&'static str),
    /// A requested scope lies outside the client's registration.
    #[error("invalid scope: {0}")]
    InvalidScope(&'static str),
    /// A registration the registry refuses.
    #[error("invalid registration: {0}")]
    InvalidRegistration(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] fhir_store::StoreError),
    /// Minting the token failed.
    #[error("signing: {0}")]
    Signing(#[from] smart_auth::IssuerError),
    /// No secure random source, or a corrupt record.
    #[error("internal: {0}")]
    Internal(String),
}

impl BackendAuthError {
    /// The RFC 6749 §5.2 `error` code.
    pub fn oauth_code(&self) -> &'static str {
        match self {
            BackendAuthError::InvalidRequest(_) => "invalid_request",
            BackendAuthError::UnsupportedGrantType => "unsupported_grant_type",
            BackendAuthError::InvalidClient(_) => "invalid_client",
            BackendAuthError::InvalidScope(_) => "invalid_scope",
            BackendAuthError::InvalidRegistration(_) => "invalid_request",
            BackendAuthError::Store(_)
            | BackendAuthError::Signing(_)
            | BackendAuthError::Internal(_) => "server_error",
        }
    }
}
