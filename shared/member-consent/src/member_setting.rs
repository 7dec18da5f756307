//! A member's standing choice about one kind of data sharing (the Provider Access
//! opt-out, the Payer-to-Payer opt-in), stored as one FHIR `Consent` beside the app
//! grants.
//!
//! One `Consent` per member and kind, id = the kind's prefix + a hash of the Patient
//! id (fixed, so reading it is one Get, and there is exactly one). `status` `active`
//! means the choice is in force; `inactive` means it was taken back. Every change is a
//! new version naming who made it (member or plan), so the version history is the
//! record of the choice. No record: the choice was never made.

use fhir::{Instant, ResourceType, is_valid_id};
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition, update_with};
use serde_json::{Value, json};

use crate::grants::GrantError;

/// `Consent.category` system of the settings' own codes.
pub const CATEGORY_SYSTEM: &str = "urn:patient-access:consent-category";
/// Extension naming who made the change: `member` or `plan`.
pub const CHANGED_BY_EXTENSION: &str = "urn:patient-access:extension:changed-by";

/// Who changed the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// The member, on the connected-apps page.
    Member,
    /// The plan, from its systems (CLI, enrollment, the attribution file's column).
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

/// The kinds of sharing a member (or the plan, for them) turns on and off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// With in-network providers: on unless the member opts out.
    ProviderAccess,
    /// With the member's other and next health plans: off unless the member opts in.
    PayerToPayer,
}

impl Sharing {
    /// Whether the member's data is shared this way now.
    pub async fn is_on<S>(self, store: &S, patient: &str) -> Result<bool, GrantError>
    where
        S: ResourceStore + ?Sized,
    {
        match self {
            Sharing::ProviderAccess => {
                Ok(!crate::provider_access::is_opted_out(store, patient).await?)
            }
            Sharing::PayerToPayer => crate::payer_to_payer::is_opted_in(store, patient).await,
        }
    }

    /// Turns this sharing on or off for the member. Returns whether anything changed.
    pub async fn set<S>(
        self,
        store: &S,
        patient: &str,
        on: bool,
        by: ChangedBy,
    ) -> Result<bool, GrantError>
    where
        S: ResourceStore + ?Sized,
    {
        match self {
            Sharing::ProviderAccess => {
                crate::provider_access::set_opt_out(store, patient, !on, by).await
            }
            Sharing::PayerToPayer => {
                crate::payer_to_payer::set_opt_in(store, patient, on, by).await
            }
        }
    }
}

/// What sets one kind of choice apart from another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setting {
    /// Consent ids of this kind start with it (grant ids are 32 hex digits: no clash).
    pub id_prefix: &'static str,
    /// `Consent.category` code and display (system [`CATEGORY_SYSTEM`]).
    pub category: (&'static str, &'static str),
    /// `policyRule`: `OPTIN` or `OPTOUT` (v3 ActCode).
    pub policy: &'static str,
    /// `provision.type` while in force: `permit` or `deny`.
    pub provision: &'static str,
    /// `provision.purpose` (v3 ActReason code, display).
    pub purpose: (&'static str, Option<&'static str>),
    /// Audit events when the choice is made and when it is taken back.
    pub events: (&'static str, &'static str),
}

impl Setting {
    /// The Consent id of a member's choice: the prefix + 40 hex digits of SHA-256 of
    /// the Patient id.
    pub fn consent_id(&self, patient: &str) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, patient.as_bytes());
        let hex: String = digest.as_ref()[..20]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}{hex}", self.id_prefix)
    }

    /// Whether the member's choice is in force now.
    pub async fn is_active<S>(&self, store: &S, patient: &str) -> Result<bool, GrantError>
    where
        S: ResourceStore + ?Sized,
    {
        if !is_valid_id(patient) {
            return Err(GrantError::Invalid("patient id"));
        }
        let record = store
            .get(ResourceType::Consent, &self.consent_id(patient))
            .await?;
        Ok(record
            .filter(|r| !r.deleted)
            .and_then(|r| status_of(&r.body))
            .is_some_and(|s| s == "active"))
    }

    /// Makes (`true`) or takes back (`false`) the choice. Returns whether anything
    /// changed: setting the current value again writes no version, and taking back a
    /// choice never made writes nothing.
    pub async fn set_active<S>(
        &self,
        store: &S,
        patient: &str,
        active: bool,
        by: ChangedBy,
    ) -> Result<bool, GrantError>
    where
        S: ResourceStore + ?Sized,
    {
        if !is_valid_id(patient) {
            return Err(GrantError::Invalid("patient id"));
        }
        let id = self.consent_id(patient);
        let status = if active { "active" } else { "inactive" };
        let written = update_with(store, ResourceType::Consent, &id, |current| {
            let current_status = current
                .filter(|r| !r.deleted)
                .and_then(|r| status_of(&r.body));
            let unchanged = match current_status.as_deref() {
                Some(s) => s == status,
                None => !active,
            };
            if unchanged {
                return None;
            }
            Some(ResourceWrite::indexed(
                ResourceType::Consent,
                id.clone(),
                self.resource(&id, patient, status, by),
                WriteCondition::Always,
            ))
        })
        .await?;
        if written.is_some() {
            let event = if active { self.events.0 } else { self.events.1 };
            tracing::info!(target: "audit", consent_id = %id, changed_by = by.code(), event, "member data-sharing setting changed");
        }
        Ok(written.is_some())
    }

    fn resource(&self, id: &str, patient: &str, status: &str, by: ChangedBy) -> Value {
        let (code, display) = self.category;
        let mut purpose = json!({
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
            "code": self.purpose.0,
        });
        if let Some(display) = self.purpose.1 {
            purpose["display"] = json!(display);
        }
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
                {"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": display}]}
            ],
            "patient": {"reference": format!("Patient/{patient}")},
            "dateTime": Instant::now().to_string(),
            "policyRule": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": self.policy
            }]},
            "provision": {"type": self.provision, "purpose": [purpose]}
        })
    }
}

fn status_of(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("status")?
        .as_str()
        .map(str::to_owned)
}
