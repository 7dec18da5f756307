//! Who is calling: the verified facts of one access token.

use std::fmt;

use fhir::{Reference, ResourceType};

use crate::scopes::ScopeSet;

/// The caller of a FHIR request, built only by [`crate::TokenVerifier::verify`] (or by
/// tests). Every authorization decision is made from this and nothing else.
///
/// `Debug` redacts `subject` and `patient`: member identifiers are PHI under HIPAA, and
/// a `?principal` in a log line must not leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: the member's account id at the authorization server.
    pub subject: String,
    /// The registered app the token was issued to.
    pub client_id: String,
    /// The member's `Patient` id: the one patient compartment this caller may see.
    pub patient: String,
    /// The granted scopes, already reduced to what this server honours.
    pub scopes: ScopeSet,
    /// The consent grant behind the token, checked against the grant store for revocation.
    pub grant_id: Option<String>,
    /// The token's `jti`, for audit records.
    pub token_id: Option<String>,
}

impl Principal {
    /// `Patient/<id>` of the member, e.g. for `fhirUser` or an AuditEvent `entity.what`.
    pub fn patient_reference(&self) -> Reference {
        Reference::new(ResourceType::Patient, self.patient.clone())
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &"<redacted>")
            .field("client_id", &self.client_id)
            .field("patient", &"<redacted>")
            .field("scopes", &self.scopes)
            .field("grant_id", &self.grant_id)
            .field("token_id", &self.token_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_member_identifiers() {
        let p = Principal {
            subject: "member-sub-123".into(),
            client_id: "app-a".into(),
            patient: "p-secret-1".into(),
            scopes: ScopeSet::parse("patient/Patient.rs"),
            grant_id: Some("g1".into()),
            token_id: None,
        };
        let text = format!("{p:?}");
        assert!(!text.contains("member-sub-123"));
        assert!(!text.contains("p-secret-1"));
        assert!(text.contains("app-a"));
        assert_eq!(p.patient_reference().relative(), "Patient/p-secret-1");
    }
}
