//! The member's Payer-to-Payer opt-in (CMS-0057-F, 42 CFR 422.121(b)), stored as a
//! FHIR `Consent` beside the app grants and the Provider Access opt-out.
//!
//! Unlike Provider Access, Payer-to-Payer is **off** until the member opts in. One
//! `Consent` per member, id `p2p-` + a hash of the Patient id (one Get to read);
//! `status` `active` with `provision.type` = `permit` means opted in, `inactive` means
//! opted out again. Every change is a new version naming who made it (member or
//! plan), so the version history is the record of the choice. No record: not opted in.

use fhir::{Instant, ResourceType, is_valid_id};
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition, update_with};
use serde_json::{Value, json};

use crate::grants::GrantError;
use crate::provider_access::{CHANGED_BY_EXTENSION, ChangedBy, OPT_OUT_CATEGORY_SYSTEM, hashed_id};

/// `Consent.category` code (system [`OPT_OUT_CATEGORY_SYSTEM`]) of the opt-in.
pub const OPT_IN_CATEGORY_CODE: &str = "payer-to-payer-opt-in";
/// The id prefix of opt-in Consents.
pub const ID_PREFIX: &str = "p2p-";

/// The Consent id of a member's Payer-to-Payer choice.
pub fn consent_id(patient: &str) -> String {
    hashed_id(ID_PREFIX, patient)
}

/// Whether the member has opted in to Payer-to-Payer now.
pub async fn is_opted_in<S>(store: &S, patient: &str) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if !is_valid_id(patient) {
        return Err(GrantError::Invalid("patient id"));
    }
    let record = store
        .get(ResourceType::Consent, &consent_id(patient))
        .await?;
    Ok(record
        .filter(|r| !r.deleted)
        .and_then(|r| status_of(&r.body))
        .is_some_and(|s| s == "active"))
}

fn status_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("status")?
        .as_str()
        .map(str::to_owned)
}

/// Opts in (`true`) or out (`false`). Returns whether anything changed: setting the
/// current value again writes no version.
pub async fn set_opt_in<S>(
    store: &S,
    patient: &str,
    opted_in: bool,
    by: ChangedBy,
) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if !is_valid_id(patient) {
        return Err(GrantError::Invalid("patient id"));
    }
    let id = consent_id(patient);
    let status = if opted_in { "active" } else { "inactive" };
    let written = update_with(store, ResourceType::Consent, &id, |current| {
        let current_status = current
            .filter(|r| !r.deleted)
            .and_then(|r| status_of(&r.body));
        let unchanged = match current_status.as_deref() {
            Some(s) => s == status,
            // Never opted in: opting out is no change.
            None => !opted_in,
        };
        if unchanged {
            return None;
        }
        Some(ResourceWrite::indexed(
            ResourceType::Consent,
            id.clone(),
            opt_in_resource(&id, patient, status, by),
            WriteCondition::Always,
        ))
    })
    .await?;
    if written.is_some() {
        let event = if opted_in {
            "payer_to_payer.opted_in"
        } else {
            "payer_to_payer.opted_out"
        };
        tracing::info!(target: "audit", consent_id = %id, changed_by = by.code(), event, "payer-to-payer setting changed");
    }
    Ok(written.is_some())
}

fn opt_in_resource(id: &str, patient: &str, status: &str, by: ChangedBy) -> Value {
    json!({
        "resourceType": "Consent",
        "id": id,
        "extension": [{"url": CHANGED_BY_EXTENSION, "valueCode": by.code()}],
        "status": status,
        "scope": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy"
        }]},
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]},
            {"coding": [{
                "system": OPT_OUT_CATEGORY_SYSTEM,
                "code": OPT_IN_CATEGORY_CODE,
                "display": "Payer-to-Payer exchange opt-in"
            }]}
        ],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": Instant::now().to_string(),
        "policyRule": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "OPTIN"
        }]},
        "provision": {
            "type": "permit",
            "purpose": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "code": "COC",
                "display": "coordination of care"
            }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn payer_to_payer_is_off_until_the_member_opts_in_and_keeps_each_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("db")).unwrap();
        assert!(!is_opted_in(&store, "p1").await.unwrap(), "off by default");
        assert!(
            !set_opt_in(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(
            set_opt_in(&store, "p1", true, ChangedBy::Member)
                .await
                .unwrap()
        );
        assert!(
            !set_opt_in(&store, "p1", true, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(is_opted_in(&store, "p1").await.unwrap());
        assert!(!is_opted_in(&store, "p2").await.unwrap());
        assert!(
            set_opt_in(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(!is_opted_in(&store, "p1").await.unwrap());
        let record = store
            .get(ResourceType::Consent, &consent_id("p1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version_id, 2, "opted in, then out: two versions");
        assert_ne!(consent_id("p1"), crate::provider_access::consent_id("p1"));
        assert!(
            !crate::provider_access::is_opted_out(&store, "p1")
                .await
                .unwrap()
        );
        let grants = crate::grants::list_for_patient(&store, "p1").await.unwrap();
        assert!(grants.is_empty(), "the opt-in is not an app grant");
    }
}
