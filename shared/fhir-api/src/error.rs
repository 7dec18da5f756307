use fhir::{IssueCode, OperationOutcome};
use http::StatusCode;

/// Everything a request can fail with, each mapped to one HTTP status and one
/// OperationOutcome. Handlers return these; only [`ApiError::status`] and
/// [`ApiError::outcome`] decide what the client sees, so no path can answer 500 for
/// bad input by accident.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// A malformed request: bad parameter, bad form body, bad cursor.
    #[error("{0}")]
    BadRequest(String),
    /// No, or an invalid, bearer token. The header value is for `WWW-Authenticate`.
    #[error("authentication required")]
    Unauthorized { www_authenticate: String },
    /// The token is valid but its scopes do not cover this interaction.
    #[error("the access token's scopes do not allow {interaction} of {resource_type}")]
    InsufficientScope {
        resource_type: fhir::ResourceType,
        interaction: &'static str,
    },
    /// The token's scopes do not allow this, for a type the member API does not serve
    /// (the Provider Access Group): the text names what is missing.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or outside the caller's compartment: the two are indistinguishable.
    #[error("{0} is not known")]
    NotFound(String),
    #[error("{0} has been deleted")]
    Gone(String),
    #[error("{method} is not supported on this path")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("this server answers in JSON only: application/fhir+json or application/json")]
    NotAcceptable,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    /// Understood but not processable (422): `$member-match` with no unique member.
    #[error("{0}")]
    Unprocessable(String),
    /// The caller spent its budget (429); `Retry-After` says when to come back.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The backend failed. The detail is logged, never sent.
    #[error("the server could not complete the request")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope { .. } | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn outcome(&self) -> OperationOutcome {
        let code = match self {
            ApiError::BadRequest(_) => IssueCode::Invalid,
            ApiError::Unauthorized { .. } => IssueCode::Login,
            ApiError::InsufficientScope { .. } | ApiError::Forbidden(_) => IssueCode::Forbidden,
            ApiError::NotFound(_) => IssueCode::NotFound,
            ApiError::Gone(_) => IssueCode::Deleted,
            ApiError::MethodNotAllowed { .. }
            | ApiError::NotAcceptable
            | ApiError::UnsupportedMediaType => IssueCode::NotSupported,
            ApiError::PayloadTooLarge { .. } => IssueCode::TooCostly,
            ApiError::Unprocessable(_) => IssueCode::Processing,
            ApiError::TooManyRequests { .. } => IssueCode::Throttled,
            ApiError::Internal(_) => IssueCode::Exception,
        };
        OperationOutcome::error(code, self.to_string())
    }
}

impl From<fhir_store::StoreError> for ApiError {
    fn from(error: fhir_store::StoreError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<fhir_search::SearchError> for ApiError {
    fn from(error: fhir_search::SearchError) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

impl From<smart_auth::CursorError> for ApiError {
    fn from(error: smart_auth::CursorError) -> Self {
        // Sealing only fails when the system's random source does.
        ApiError::Internal(error.to_string())
    }
}
