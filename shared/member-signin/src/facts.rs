//! Member facts read from the plan's own FHIR records: the Patient (birth date,
//! member id, ZIP, email) and the member's active Coverage (member id).
//!
//! Reading the records the API serves, rather than a copy made at enrollment, means a
//! corrected birth date or a new address applies to the next sign-in.

use std::sync::Arc;

use fhir::ResourceType;
use fhir_store::{ListQuery, Partition, ResourceStore};
use serde_json::Value;

use crate::ports::{MemberDirectory, MemberFacts, PortError};

/// The v2-0203 identifier type of a plan member number.
const MEMBER_NUMBER_TYPE: &str = "MB";
/// More Coverage than this per member is not expected; the rest is not read.
const MAX_COVERAGES: usize = 50;

/// [`MemberDirectory`] over the FHIR store.
pub struct StoreMemberFacts<S> {
    store: Arc<S>,
}

impl<S> StoreMemberFacts<S> {
    pub fn new(store: Arc<S>) -> Self {
        StoreMemberFacts { store }
    }
}

impl<S: ResourceStore> MemberDirectory for StoreMemberFacts<S> {
    async fn facts(&self, patient_id: &str) -> Result<Option<MemberFacts>, PortError> {
        if !fhir::is_valid_id(patient_id) {
            return Ok(None);
        }
        let record = self
            .store
            .get(ResourceType::Patient, patient_id)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        let Some(patient) = record
            .filter(|r| !r.deleted)
            .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
        else {
            return Ok(None);
        };
        if patient.get("active").and_then(Value::as_bool) == Some(false) {
            return Ok(None);
        }
        let mut facts = patient_facts(&patient);
        facts
            .member_ids
            .extend(self.coverage_member_ids(patient_id).await?);
        Ok(Some(facts))
    }

    async fn coverage_end(&self, patient_id: &str) -> Result<Option<String>, PortError> {
        if !fhir::is_valid_id(patient_id) {
            return Ok(None);
        }
        let coverages = self.coverages(patient_id).await?;
        Ok(crate::access::latest_coverage_end(&coverages))
    }
}

impl<S: ResourceStore> StoreMemberFacts<S> {
    /// The member's Coverage resources (not deleted), at most [`MAX_COVERAGES`].
    async fn coverages(&self, patient_id: &str) -> Result<Vec<Value>, PortError> {
        let query = ListQuery {
            partition: Partition::Compartment {
                patient: patient_id.to_owned(),
                resource_type: ResourceType::Coverage,
            },
            after: None,
            last_updated_from: None,
            last_updated_to: None,
            descending: false,
            limit: MAX_COVERAGES,
        };
        let page = self
            .store
            .list(query)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok(page
            .entries
            .into_iter()
            .filter(|(_, r)| !r.deleted)
            .filter_map(|(_, r)| serde_json::from_str::<Value>(&r.body).ok())
            .collect())
    }

    /// Member numbers on the member's active Coverage resources.
    async fn coverage_member_ids(&self, patient_id: &str) -> Result<Vec<String>, PortError> {
        Ok(self
            .coverages(patient_id)
            .await?
            .iter()
            .filter(|c| c.get("status").and_then(Value::as_str) == Some("active"))
            .flat_map(member_numbers)
            .collect())
    }
}

/// The identity facts of a Patient resource.
pub fn patient_facts(patient: &Value) -> MemberFacts {
    let strings = |list: &str, field: &str| -> Vec<String> {
        array(patient, list)
            .filter_map(|item| item.get(field).and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    let email = array(patient, "telecom")
        .filter(|t| t.get("system").and_then(Value::as_str) == Some("email"))
        .find_map(|t| t.get("value").and_then(Value::as_str))
        .map(str::to_owned);
    MemberFacts {
        birth_date: patient
            .get("birthDate")
            .and_then(Value::as_str)
            .map(str::to_owned),
        member_ids: member_numbers(patient),
        postal_codes: strings("address", "postalCode"),
        email,
    }
}

fn array<'a>(resource: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    resource
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Identifier values typed as a member number (v2-0203 `MB`).
fn member_numbers(resource: &Value) -> Vec<String> {
    array(resource, "identifier")
        .filter(|identifier| {
            let codings = identifier
                .get("type")
                .map(|t| array(t, "coding"))
                .into_iter()
                .flatten();
            codings
                .into_iter()
                .any(|c| c.get("code").and_then(Value::as_str) == Some(MEMBER_NUMBER_TYPE))
        })
        .filter_map(|identifier| identifier.get("value").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patient_facts_come_from_identifier_address_and_telecom() {
        let patient = json!({
            "resourceType": "Patient",
            "identifier": [
                { "type": { "coding": [{ "code": "MB" }] }, "value": "DH000112345" },
                { "type": { "coding": [{ "code": "MR" }] }, "value": "MR1" },
            ],
            "birthDate": "1984-03-07",
            "address": [{ "postalCode": "43215" }],
            "telecom": [{ "system": "phone", "value": "555" }, { "system": "email", "value": "a@example.com" }],
        });
        let facts = patient_facts(&patient);
        assert_eq!(facts.birth_date.as_deref(), Some("1984-03-07"));
        assert_eq!(facts.member_ids, vec!["DH000112345".to_owned()]);
        assert_eq!(facts.postal_codes, vec!["43215".to_owned()]);
        assert_eq!(facts.email.as_deref(), Some("a@example.com"));
    }
}
