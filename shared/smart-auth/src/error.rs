//! Why a token was refused.
//!
//! Every variant answers `401` with the same generic challenge and body: the caller
//! learns only that the token is not acceptable. The variants exist for tests, metrics
//! and audit records; their messages name the failed check and never contain token
//! contents or member data.

/// A refused access token (or a failure to obtain the keys needed to check it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    MissingToken,
    #[error("Authorization header is not a single Bearer token")]
    MalformedHeader,
    #[error("Authorization header exceeds the size limit")]
    TokenTooLarge,
    #[error("token is not a well-formed JWT")]
    MalformedToken,
    #[error("token header has no kid")]
    MissingKeyId,
    #[error("token header carries a key reference we never follow (jku, x5u, jwk, x5c or crit)")]
    ForbiddenHeader,
    #[error("token algorithm is not RS256")]
    DisallowedAlgorithm,
    #[error("token kid is not in the issuer's key set")]
    UnknownKey,
    #[error("token signature does not verify")]
    InvalidSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token issuer is not ours")]
    WrongIssuer,
    #[error("token audience is not this server")]
    WrongAudience,
    #[error("token is not an access token")]
    NotAnAccessToken,
    #[error("token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    #[error("token claim `{0}` has an invalid value")]
    InvalidClaim(&'static str),
    /// The key set could not be fetched or parsed. Still a `401` to the caller, but an
    /// operational fault worth alerting on (see [`AuthError::is_server_fault`]).
    #[error("issuer key set unavailable: {0}")]
    KeysUnavailable(String),
}

impl AuthError {
    /// The HTTP status: always `401`.
    pub fn status(&self) -> u16 {
        401
    }

    /// The `WWW-Authenticate` header value (RFC 6750 §3).
    ///
    /// A request with no credentials gets the bare challenge, as RFC 6750 §3.1 advises;
    /// everything else gets `error="invalid_token"` and no description, so nothing about
    /// which check failed reaches the caller.
    pub fn www_authenticate(&self) -> String {
        match self {
            AuthError::MissingToken => r#"Bearer realm="fhir""#.to_owned(),
            _ => r#"Bearer realm="fhir", error="invalid_token""#.to_owned(),
        }
    }

    /// The one message a response body (an OperationOutcome) may carry.
    pub fn public_message(&self) -> &'static str {
        "The access token is missing, invalid or expired."
    }

    /// True when the failure is ours (key set unreachable), not the caller's.
    pub fn is_server_fault(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            AuthError::MissingToken.www_authenticate(),
            r#"Bearer realm="fhir""#
        );
        for e in [
            AuthError::Expired,
            AuthError::MalformedHeader,
            AuthError::KeysUnavailable("x".into()),
        ] {
            assert_eq!(
                e.www_authenticate(),
                r#"Bearer realm="fhir", error="invalid_token""#
            );
            assert_eq!(e.status(), 401);
        }
        assert!(AuthError::KeysUnavailable("x".into()).is_server_fault());
        assert!(!AuthError::UnknownKey.is_server_fault());
    }
}
