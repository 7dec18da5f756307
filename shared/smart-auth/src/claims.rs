//! The claim set of an access token: what the authorization server mints and what the
//! FHIR handlers verify. One struct for both, so the two sides cannot drift apart.

use std::time::Duration;

pub(crate) use fhir::clock::unix_now;
use serde::{Deserialize, Serialize};

/// The only `token_use` we accept at the FHIR handlers.
pub const TOKEN_USE_ACCESS: &str = "access";

/// Claims of an access token issued to a member app.
///
/// Fields we check by hand (`client_id`, `patient`, `token_use`) default to empty when
/// absent, so the verifier can name the missing claim instead of failing inside serde.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The authorization server's issuer URL. Empty means "fill in at mint time".
    #[serde(default)]
    pub iss: String,
    /// The FHIR base URL. A single string, never an array: we mint it that way and an
    /// array would only widen where the token is accepted.
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub client_id: String,
    /// Space-separated SMART scopes (v1 and/or v2).
    #[serde(default)]
    pub scope: String,
    /// The member's Patient id.
    #[serde(default)]
    pub patient: String,
    /// `Patient/<patient>`.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// `access` for access tokens; ID tokens carry `id` and are refused by the verifier.
    #[serde(default)]
    pub token_use: String,
}

impl AccessClaims {
    /// Claims for a member token valid from now for `lifetime`.
    ///
    /// `iss` and `aud` are left empty for the issuer to fill in; `sub` is the patient id
    /// (the local issuer has no separate account ids); `jti` is 128 random bits.
    pub fn for_member(
        patient: impl Into<String>,
        client_id: impl Into<String>,
        scope: impl Into<String>,
        lifetime: Duration,
    ) -> AccessClaims {
        let patient = patient.into();
        let now = unix_now();
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
        AccessClaims {
            iss: String::new(),
            aud: String::new(),
            sub: patient.clone(),
            client_id: client_id.into(),
            scope: scope.into(),
            fhir_user: Some(format!("Patient/{patient}")),
            patient,
            grant_id: None,
            jti: secrets::random_b64(16).ok(),
            iat: now,
            exp: now.saturating_add(lifetime),
            nbf: None,
            token_use: TOKEN_USE_ACCESS.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_claims_are_complete() {
        let c = AccessClaims::for_member("p1", "app-a", "patient/*.rs", Duration::from_secs(3600));
        assert_eq!(c.sub, "p1");
        assert_eq!(c.fhir_user.as_deref(), Some("Patient/p1"));
        assert_eq!(c.token_use, "access");
        assert_eq!(c.exp - c.iat, 3600);
        assert!(c.jti.as_deref().is_some_and(|j| j.len() >= 20));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["fhirUser"], "Patient/p1");
        assert!(json.get("grant_id").is_none());
    }
}
