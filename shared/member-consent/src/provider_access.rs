//! The member's Provider Access opt-out (CMS-0057-F, 42 CFR 422.121(a)(3)), stored as a
//! FHIR `Consent` beside the app grants.
//!
//! One `Consent` per member, id `pao-` + a hash of the Patient id (fixed, so reading
//! it is one GetItem on every export, and there is exactly one). `status` `active`
//! means the opt-out is in force (`provision.type` = `deny`: providers get nothing);
//! `inactive` means the member opted back in. Every change is a new version, so the
//! version history is the record of who changed it and when. No record at all means
//! the member never opted out: Provider Access is on by default, as the rule says.

use fhir::{Instant, ResourceType, is_valid_id};
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition, update_with};
use serde_json::{Value, json};

use crate::grants::GrantError;

/// `Consent.category` coding that marks the Provider Access opt-out.
pub const OPT_OUT_CATEGORY_SYSTEM: &str = "urn:patient-access:consent-category";
pub const OPT_OUT_CATEGORY_CODE: &str = "provider-access-opt-out";
/// Extension naming who made the change: `member` or `plan`.
pub const CHANGED_BY_EXTENSION: &str = "urn:patient-access:extension:changed-by";
/// The id prefix of opt-out Consents (grant ids are 32 hex digits: no clash).
pub const ID_PREFIX: &str = "pao-";

/// Who changed the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// The member, on the connected-apps page.
    Member,
    /// The plan, from its systems (CLI or the attribution file's opt-out column).
    Plan,
}

impl ChangedBy {
    pub(crate) fn code(self) -> &'static str {
        match self {
            ChangedBy::Member => "member",
            ChangedBy::Plan => "plan",
        }
    }
}

/// The Consent id of a member's opt-out.
pub fn consent_id(patient: &str) -> String {
    hashed_id(ID_PREFIX, patient)
}

/// `prefix` + 40 hex digits of SHA-256 of the Patient id: one fixed Consent id per
/// member and kind, so reading it is one Get.
pub(crate) fn hashed_id(prefix: &str, patient: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, patient.as_bytes());
    let hex: String = digest.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{hex}")
}

/// Whether `id` names an opt-out Consent rather than an app grant.
pub fn is_opt_out_id(id: &str) -> bool {
    id.starts_with(ID_PREFIX)
}

/// Whether the member has opted out of Provider Access now.
pub async fn is_opted_out<S>(store: &S, patient: &str) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if !is_valid_id(patient) {
        return Err(GrantError::Invalid("patient id"));
    }
    let record = store
        .get(ResourceType::Consent, &consent_id(patient))
        .await?;
    Ok(record.is_some_and(|r| {
        !r.deleted
            && serde_json::from_str::<Value>(&r.body)
                .ok()
                .and_then(|b| {
                    b.get("status")
                        .and_then(Value::as_str)
                        .map(|s| s == "active")
                })
                .unwrap_or(false)
    }))
}

/// Sets the opt-out (`true`) or opts back in (`false`). Returns whether anything
/// changed: setting the current value again writes no version.
pub async fn set_opt_out<S>(
    store: &S,
    patient: &str,
    opted_out: bool,
    by: ChangedBy,
) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if !is_valid_id(patient) {
        return Err(GrantError::Invalid("patient id"));
    }
    let id = consent_id(patient);
    let status = if opted_out { "active" } else { "inactive" };
    let written = update_with(store, ResourceType::Consent, &id, |current| {
        let current_status = current
            .filter(|r| !r.deleted)
            .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
            .and_then(|b| b.get("status").and_then(Value::as_str).map(str::to_owned));
        let unchanged = match current_status.as_deref() {
            Some(s) => s == status,
            // Never opted out: opting in is no change.
            None => !opted_out,
        };
        if unchanged {
            return None;
        }
        Some(ResourceWrite::indexed(
            ResourceType::Consent,
            id.clone(),
            opt_out_resource(&id, patient, status, by),
            WriteCondition::Always,
        ))
    })
    .await?;
    if written.is_some() {
        let event = if opted_out {
            "provider_access.opted_out"
        } else {
            "provider_access.opted_in"
        };
        tracing::info!(target: "audit", consent_id = %id, changed_by = by.code(), event, "provider access setting changed");
    }
    Ok(written.is_some())
}

fn opt_out_resource(id: &str, patient: &str, status: &str, by: ChangedBy) -> Value {
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
                "code": OPT_OUT_CATEGORY_CODE,
                "display": "Provider Access API opt-out"
            }]}
        ],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": Instant::now().to_string(),
        "policyRule": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "OPTOUT"
        }]},
        "provision": {
            "type": "deny",
            "purpose": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "code": "TREAT"
            }]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opting_out_and_back_in_keeps_each_change_as_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("db")).unwrap();
        assert!(!is_opted_out(&store, "p1").await.unwrap(), "on by default");
        assert!(
            !set_opt_out(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(
            set_opt_out(&store, "p1", true, ChangedBy::Member)
                .await
                .unwrap()
        );
        assert!(
            !set_opt_out(&store, "p1", true, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(is_opted_out(&store, "p1").await.unwrap());
        assert!(!is_opted_out(&store, "p2").await.unwrap());
        assert!(
            set_opt_out(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(!is_opted_out(&store, "p1").await.unwrap());
        let record = store
            .get(ResourceType::Consent, &consent_id("p1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version_id, 2);
        let grants = crate::grants::list_for_patient(&store, "p1").await.unwrap();
        assert!(grants.is_empty(), "the opt-out is not an app grant");
    }
}
