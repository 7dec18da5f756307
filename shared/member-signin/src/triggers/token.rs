//! Pre Token Generation V2: the last gate before Cognito issues tokens, on sign-in and
//! on every refresh.
//!
//! It re-reads the grant each time, so a revoked grant stops refreshes at once. The
//! patient comes only from the `custom:patient_id` attribute (written by enrollment,
//! not writable by app clients) and the client only from `callerContext`; nothing is
//! taken from `clientMetadata`, which the caller chooses.

use serde_json::{Map, Value, json};

use super::TriggerError;
use super::event::{Event, PATIENT_ATTRIBUTE};
use crate::ports::{GrantGate, TriggerPorts};

/// The scope Cognito puts in every API-issued access token. It lets the holder change
/// the member's email (account takeover), so it never leaves in a token.
pub const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// Identity claims Cognito would copy from user attributes into the ID token. Our
/// tokens identify the member by `fhirUser` only.
const PII_CLAIMS: &[&str] = &[
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "birthdate",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "address",
    "gender",
    "picture",
    "profile",
    "website",
    "zoneinfo",
    "locale",
    "updated_at",
    PATIENT_ATTRIBUTE,
];

/// The `response` object, or [`TriggerError::Refused`] when there is no active grant.
pub async fn pre_token<D, K, S, G: GrantGate>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<Value, TriggerError> {
    let patient = event.patient_id().ok_or(TriggerError::Refused)?;
    let client = event.caller_context.client_id.as_str();
    if client.is_empty() {
        return Err(TriggerError::Malformed);
    }
    let grant = ports
        .grants
        .active_grant(client, patient)
        .await
        .map_err(TriggerError::Port)?;
    let Some(grant) = grant else {
        tracing::info!("token generation refused: no active grant for this app");
        return Err(TriggerError::Refused);
    };
    let fhir_user = match &ports.config.fhir_base_url {
        Some(base) => format!("{}/Patient/{patient}", base.trim_end_matches('/')),
        None => format!("Patient/{patient}"),
    };
    let mut access_claims = Map::new();
    access_claims.insert("patient".into(), json!(patient));
    access_claims.insert("fhirUser".into(), json!(fhir_user));
    access_claims.insert("grant_id".into(), json!(grant.grant_id));
    if !grant.scope.is_empty() {
        access_claims.insert("smart_scope".into(), json!(grant.scope));
    }
    let mut details = json!({
        "idTokenGeneration": {
            "claimsToAddOrOverride": { "fhirUser": fhir_user },
            "claimsToSuppress": id_token_suppressions(event),
        },
        "accessTokenGeneration": {
            "claimsToAddOrOverride": access_claims,
            "claimsToSuppress": [],
            "scopesToAdd": [],
            "scopesToSuppress": [ADMIN_SCOPE],
        },
    });
    // Absent would be fine; a default (empty) object would strip the member's groups.
    if let (Some(groups), Some(map)) = (&event.request.group_configuration, details.as_object_mut())
    {
        map.insert("groupOverrideDetails".into(), groups.clone());
    }
    Ok(json!({ "claimsAndScopeOverrideDetails": details }))
}

/// Every PII claim, plus every `custom:*` attribute the user has.
fn id_token_suppressions(event: &Event) -> Vec<String> {
    let custom = event
        .request
        .user_attributes
        .keys()
        .filter(|k| k.starts_with("custom:"));
    let mut claims: Vec<String> = PII_CLAIMS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(custom.cloned())
        .collect();
    claims.sort();
    claims.dedup();
    claims
}
