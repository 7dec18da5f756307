//! 278 → PDex Prior Authorization, stated as the issue states it: one
//! authorization per certification (a status change is a new version), the
//! decision per service, the denial reason, cancellation, a request that
//! reads as pended until its response, and the members and providers the
//! claims already name.

use std::collections::BTreeMap;

use edi_fhir::{Change, SetOutcome, apply, convert};
use fhir::ResourceType;
use serde_json::Value;

use crate::support::{config, fixture};

/// Resources and how many versions each got.
#[derive(Default)]
struct Store {
    resources: BTreeMap<(ResourceType, String), Value>,
    versions: BTreeMap<(ResourceType, String), usize>,
}

impl Store {
    /// Applies every change of a fixture (which must be accepted whole).
    fn ingest(&mut self, name: &str) -> &mut Self {
        for c in changes(name) {
            let key = (c.resource_type, c.id.clone());
            if let Some(next) = apply(self.resources.get(&key), &c) {
                self.resources.insert(key.clone(), next);
                *self.versions.entry(key).or_default() += 1;
            }
        }
        self
    }

    fn prior_authorizations(&self) -> Vec<&Value> {
        self.resources
            .values()
            .filter(|r| r["use"] == "preauthorization")
            .collect()
    }

    /// The one prior authorization with this certification number.
    fn certification(&self, number: &str) -> &Value {
        let found: Vec<&Value> = self
            .prior_authorizations()
            .into_iter()
            .filter(|r| r["preAuthRef"][0] == number)
            .collect();
        assert_eq!(found.len(), 1, "{number}: {found:#?}");
        found[0]
    }

    fn versions_of(&self, eob: &Value) -> usize {
        let id = eob["id"].as_str().unwrap_or_default().to_owned();
        self.versions
            .get(&(ResourceType::ExplanationOfBenefit, id))
            .copied()
            .unwrap_or(0)
    }
}

fn changes(name: &str) -> Vec<Change> {
    let conversion = convert(fixture(name).as_bytes(), &config());
    assert!(
        !conversion.rejects_everything,
        "{name}: {:?}",
        conversion.file_problems
    );
    for set in &conversion.transaction_sets {
        assert!(
            matches!(set.outcome, SetOutcome::Accepted { .. }),
            "{name}: {set:?}"
        );
        assert_eq!(set.transaction_type, "278");
        assert_eq!(set.implementation_guide, "005010X217");
    }
    conversion.changes().cloned().collect()
}

/// The HCR01 code of the reviewAction on an adjudication entry list.
fn review_action(adjudication: &Value) -> Option<&str> {
    adjudication.as_array()?.iter().find_map(|entry| {
        let review = entry["extension"].as_array()?.iter().find(|e| {
            e["url"]
                == "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewAction"
        })?;
        review["extension"][0]["valueCodeableConcept"]["coding"][0]["code"].as_str()
    })
}

/// The entry of an adjudication list with this PDex discriminator category.
fn slice<'v>(adjudication: &'v Value, category: &str) -> Option<&'v Value> {
    adjudication
        .as_array()?
        .iter()
        .find(|e| e["category"]["coding"][0]["code"] == category)
}

#[test]
fn every_prior_authorization_is_a_pdex_eob_with_use_preauthorization() {
    for name in [
        "278_pended.x12",
        "278_approved.x12",
        "278_partial.x12",
        "278_denied.x12",
        "278_cancelled.x12",
        "278_request.x12",
        "278_request_response.x12",
        "278_contact_no_action.x12",
    ] {
        let mut store = Store::default();
        store.ingest(name);
        let pas = store.prior_authorizations();
        assert!(!pas.is_empty(), "{name}");
        for pa in pas {
            assert_eq!(pa["resourceType"], "ExplanationOfBenefit");
            assert_eq!(
                pa["meta"]["profile"][0],
                "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-priorauthorization",
                "{name}"
            );
            assert_eq!(
                pa["insurer"]["reference"],
                "Organization/org-payer-999996666"
            );
            assert!(
                pa["created"].is_string() && pa["provider"].is_object(),
                "{name}"
            );
        }
    }
}

#[test]
fn a_pended_authorization_then_its_approval_is_one_resource_with_two_versions() {
    let mut store = Store::default();
    store.ingest("278_pended.x12");
    let pended = store.certification("AUTH7730251").clone();
    assert_eq!(pended["outcome"], "queued");
    assert_eq!(review_action(&pended["adjudication"]), Some("A4"));
    assert_eq!(
        review_action(&pended["item"][0]["adjudication"]),
        Some("A4")
    );
    assert!(
        pended.get("preAuthRefPeriod").is_none(),
        "no dates until decided"
    );
    assert_eq!(
        pended["processNote"][0]["text"],
        "CLINICAL NOTES REQUESTED FROM THE REQUESTING PROVIDER"
    );

    store.ingest("278_approved.x12");
    let approved = store.certification("AUTH7730251");
    assert_eq!(approved["id"], pended["id"], "the same authorization");
    assert_eq!(store.versions_of(approved), 2);
    assert_eq!(
        (&approved["status"], &approved["outcome"]),
        (&"active".into(), &"complete".into())
    );
    assert_eq!(review_action(&approved["adjudication"]), Some("A1"));
    assert_eq!(
        approved["preAuthRefPeriod"][0],
        serde_json::json!({ "start": "2024-01-15", "end": "2024-04-15" })
    );
    let item = &approved["item"][0];
    assert_eq!(item["productOrService"]["coding"][0]["code"], "97110");
    assert_eq!(review_action(&item["adjudication"]), Some("A1"));
    assert_eq!(
        slice(&item["adjudication"], "allowedunits").map(|s| &s["value"]),
        Some(&12.0.into())
    );

    // Re-sent files change nothing; a pended response arriving after the
    // approval (older BHT04) never rolls it back.
    store.ingest("278_pended.x12").ingest("278_approved.x12");
    assert_eq!(store.versions_of(store.certification("AUTH7730251")), 2);
    let mut late = Store::default();
    late.ingest("278_approved.x12").ingest("278_pended.x12");
    assert_eq!(late.certification("AUTH7730251")["outcome"], "complete");
    assert_eq!(late.versions_of(late.certification("AUTH7730251")), 1);
}

#[test]
fn a_partial_approval_carries_each_services_decision_and_quantities() {
    let mut store = Store::default();
    store.ingest("278_partial.x12");
    let pa = store.certification("AUTH9020117");
    assert_eq!(pa["outcome"], "partial");
    assert_eq!(review_action(&pa["adjudication"]), Some("A2"));
    let items = pa["item"].as_array().cloned().unwrap_or_default();
    let decisions: Vec<_> = items
        .iter()
        .map(|i| {
            (
                review_action(&i["adjudication"]),
                i["quantity"]["value"].clone(),
                slice(&i["adjudication"], "allowedunits").map(|s| &s["value"]),
                slice(&i["adjudication"], "denialreason")
                    .map(|s| &s["reason"]["coding"][0]["code"]),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            (Some("A1"), 12.0.into(), Some(&12.0.into()), None),
            // Modified: 20 visits asked, 10 certified.
            (Some("A6"), 20.0.into(), Some(&10.0.into()), None),
            (Some("A3"), 8.0.into(), None, Some(&"T1".into())),
        ]
    );
}

#[test]
fn a_denial_carries_its_reason_in_the_pdex_denialreason_slice() {
    let mut store = Store::default();
    store.ingest("278_denied.x12");
    let pa = store.certification("AUTH6610933");
    assert_eq!(
        (&pa["status"], &pa["outcome"]),
        (&"active".into(), &"complete".into())
    );
    assert_eq!(review_action(&pa["adjudication"]), Some("A3"));
    let reason = slice(&pa["adjudication"], "denialreason").map(|s| &s["reason"]["coding"][0]);
    assert_eq!(
        reason,
        Some(
            &serde_json::json!({ "system": "https://codesystem.x12.org/external/886", "code": "T1" })
        )
    );
    assert_eq!(
        pa["type"]["coding"][0]["code"], "institutional",
        "an SV2 service is institutional"
    );
    assert_eq!(
        pa["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"],
        "R10.30"
    );
}

#[test]
fn a_cancellation_is_a_new_version_with_status_cancelled() {
    let mut store = Store::default();
    store
        .ingest("278_pended.x12")
        .ingest("278_approved.x12")
        .ingest("278_cancelled.x12");
    let pa = store.certification("AUTH7730251");
    assert_eq!(store.versions_of(pa), 3);
    assert_eq!(pa["status"], "cancelled");
    assert_eq!(review_action(&pa["adjudication"]), Some("C"));
    assert_eq!(
        pa["processNote"][0]["text"],
        "CANCELLED AT THE REQUEST OF THE PROVIDER"
    );
}

#[test]
fn a_request_reads_as_pended_until_its_response_decides_it() {
    let mut store = Store::default();
    store.ingest("278_request.x12");
    let pas = store.prior_authorizations();
    assert_eq!(pas.len(), 1);
    let request = pas[0].clone();
    assert_eq!(
        (&request["status"], &request["outcome"]),
        (&"active".into(), &"queued".into())
    );
    assert!(
        request.get("preAuthRef").is_none(),
        "no certification number yet"
    );
    assert_eq!(
        review_action(&request["adjudication"]),
        None,
        "no decision yet"
    );
    assert_eq!(request["identifier"][0]["value"], "RQ20240220001");
    assert_eq!(request["type"]["coding"][0]["code"], "institutional");
    assert_eq!(request["item"][0]["revenue"]["coding"][0]["code"], "0120");

    store.ingest("278_request_response.x12");
    let decided = store.certification("AUTH8812044");
    assert_eq!(review_action(&decided["adjudication"]), Some("A1"));
    assert_eq!(
        decided["identifier"][1]["value"], "RQ20240220001",
        "linked by the trace"
    );
    let key = (
        ResourceType::ExplanationOfBenefit,
        request["id"].as_str().unwrap_or_default().to_owned(),
    );
    assert_eq!(
        store.resources[&key]["status"], "cancelled",
        "the request's pended record is closed"
    );
    assert_eq!(store.versions[&key], 2);
    // Re-sending the request does not reopen it.
    store.ingest("278_request.x12");
    assert_eq!(store.versions[&key], 2);
}

#[test]
fn contact_payer_stays_queued_and_no_action_required_completes() {
    let mut store = Store::default();
    store.ingest("278_contact_no_action.x12");
    let contact = store.certification("AUTH5500172");
    assert_eq!(contact["outcome"], "queued");
    assert_eq!(review_action(&contact["adjudication"]), Some("CT"));
    let none = store.certification("AUTH5500173");
    assert_eq!(none["outcome"], "complete");
    assert_eq!(review_action(&none["adjudication"]), Some("NA"));
}

#[test]
fn members_and_providers_are_the_resources_the_claims_name() {
    let mut store = Store::default();
    store.ingest("278_approved.x12").ingest("278_denied.x12");
    let claims = convert(fixture("837p.x12").as_bytes(), &config());
    let claim = claims
        .changes()
        .find(|c| c.resource_type == ResourceType::ExplanationOfBenefit)
        .and_then(|c| match &c.action {
            edi_fhir::Action::Merge(r) => Some(r.to_value()),
            edi_fhir::Action::Cancel { .. } => None,
        })
        .unwrap_or_default();
    let approved = store.certification("AUTH7730251");
    let denied = store.certification("AUTH6610933");
    // The 837's billing provider requested; its rendering provider serves.
    assert_eq!(
        approved["provider"]["reference"],
        claim["provider"]["reference"]
    );
    assert_eq!(
        approved["careTeam"][0]["provider"]["reference"],
        "Practitioner/practitioner-npi-1234567893"
    );
    // The dependent (TED) is the 837's patient, with the 837's Coverage.
    assert_eq!(denied["patient"], claim["patient"]);
    assert_eq!(
        denied["insurance"][0]["coverage"],
        claim["insurance"][0]["coverage"]
    );
    assert_eq!(
        approved["patient"]["reference"],
        "Patient/patient-999996666-JS00111223333"
    );
}

#[test]
fn a_response_without_a_decision_or_with_an_unknown_action_is_rejected() {
    let good = fixture("278_approved.x12");
    for (bad, reason, code) in [
        (
            good.replace("HCR*A1*AUTH7730251~\n", "")
                .replace("SE*30*", "SE*29*"),
            "the patient event has no decision (HCR) in a response (BHT02 = 11)",
            "3",
        ),
        (
            good.replace("HCR*A1*AUTH7730251~", "HCR*Z9*AUTH7730251~"),
            "HCR01 action code \"Z9\" is not one of A1, A2, A3, A4, A6, C, CT, NA",
            "7",
        ),
    ] {
        assert_ne!(bad, good);
        let conversion = convert(bad.as_bytes(), &config());
        let problems = match &conversion.transaction_sets[0].outcome {
            SetOutcome::Rejected { problems } => problems.clone(),
            SetOutcome::Accepted { .. } => panic!("{reason}: accepted"),
        };
        assert!(
            problems
                .iter()
                .any(|p| p.message == reason && p.code == code),
            "{problems:#?}"
        );
    }
}
