//! The mapping and merge rules, stated as tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use edi_fhir::{Action, Change, MappingConfig, Resource, SetOutcome, apply, convert, fold};

use crate::support::{config, fixture};
use fhir::ResourceType;
use serde_json::Value;

type Store = BTreeMap<(ResourceType, String), Value>;

fn changes_of(text: &str, config: &MappingConfig) -> Vec<Change> {
    let conversion = convert(text.as_bytes(), config);
    assert!(
        !conversion.rejects_everything,
        "{:?}",
        conversion.file_problems
    );
    for set in &conversion.transaction_sets {
        assert!(
            matches!(set.outcome, SetOutcome::Accepted { .. }),
            "{set:?}"
        );
    }
    conversion.changes().cloned().collect()
}

fn apply_all(store: &mut Store, changes: &[Change]) {
    for c in changes {
        let key = (c.resource_type, c.id.clone());
        if let Some(next) = apply(store.get(&key), c) {
            store.insert(key, next);
        }
    }
}

fn eobs(store: &Store) -> Vec<&Value> {
    store
        .iter()
        .filter(|((t, _), _)| *t == ResourceType::ExplanationOfBenefit)
        .map(|(_, v)| v)
        .collect()
}

fn eob_with_account<'s>(store: &'s Store, account: &str) -> &'s Value {
    eobs(store)
        .into_iter()
        .find(|e| {
            supporting(e, "patientaccountnumber").and_then(|s| s["valueString"].as_str())
                == Some(account)
        })
        .unwrap_or(&Value::Null)
}

fn supporting<'v>(eob: &'v Value, category: &str) -> Option<&'v Value> {
    eob["supportingInfo"]
        .as_array()?
        .iter()
        .find(|s| s["category"]["coding"][0]["code"] == category)
}

fn unique_claim_id(eob: &Value) -> &str {
    eob["identifier"][0]["value"].as_str().unwrap_or("")
}

fn total(eob: &Value, category: &str) -> Option<f64> {
    eob["total"]
        .as_array()?
        .iter()
        .find(|t| t["category"]["coding"][0]["code"] == category)?["amount"]["value"]
        .as_f64()
}

/// Rewrites one segment of a fixture and fixes SE01.
fn edit(text: &str, from: &str, to: &str) -> String {
    let segments: Vec<&str> = text.split('~').collect();
    let mut out: Vec<String> = Vec::new();
    for s in &segments {
        let trimmed = s.trim_start();
        if trimmed == from {
            out.extend(to.split('~').map(|x| format!("\n{x}")));
        } else {
            out.push((*s).to_owned());
        }
    }
    let count = out
        .iter()
        .map(|s| s.trim_start())
        .skip_while(|s| !s.starts_with("ST*"))
        .take_while(|s| !s.starts_with("SE*"))
        .count()
        + 1;
    out.iter()
        .map(|s| {
            let t = s.trim_start();
            if let Some(rest) = t.strip_prefix("SE*") {
                let control = rest.split('*').nth(1).unwrap_or("");
                format!("\nSE*{count}*{control}")
            } else {
                s.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("~")
}

#[test]
fn clm01_becomes_the_patient_account_number_not_the_claim_identifier() {
    let store = fold(&changes_of(&fixture("837p.x12"), &config()));
    let eob = eob_with_account(&store, "26463774");
    assert_ne!(unique_claim_id(eob), "26463774");
    assert_eq!(
        eob["identifier"][0]["type"]["coding"][0]["code"], "uc",
        "{eob}"
    );
    // Without adjudication the uc is the claim key, in its own system.
    assert_eq!(unique_claim_id(eob), eob["id"].as_str().unwrap_or("-"));
}

#[test]
fn icd_10_codes_gain_their_dot() {
    let store = fold(&changes_of(&fixture("837p.x12"), &config()));
    let eob = eob_with_account(&store, "26463774");
    let codes: Vec<&str> = eob["diagnosis"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["diagnosisCodeableConcept"]["coding"][0]["code"].as_str())
        .collect();
    assert_eq!(codes, ["J02.0", "Z11.59"]);
}

#[test]
fn a_dependent_claim_belongs_to_the_dependent_and_the_subscriber_holds_the_policy() {
    let store = fold(&changes_of(&fixture("837p.x12"), &config()));
    let eob = eob_with_account(&store, "26463774");
    let patient = eob["patient"]["reference"].as_str().unwrap_or("");
    let coverage_ref = eob["insurance"][0]["coverage"]["reference"]
        .as_str()
        .unwrap_or("");
    let coverage_id = coverage_ref.trim_start_matches("Coverage/").to_owned();
    let coverage = &store[&(ResourceType::Coverage, coverage_id)];
    assert_eq!(coverage["beneficiary"]["reference"], patient);
    assert_eq!(coverage["relationship"]["coding"][0]["code"], "child");
    assert_eq!(
        coverage["subscriber"]["reference"],
        "Patient/patient-999996666-JS00111223333"
    );
    assert_eq!(coverage["subscriberId"], "JS00111223333");
}

#[test]
fn an_835_before_its_837_ends_in_the_same_eob() {
    let claim = changes_of(&fixture("837p.x12"), &config());
    let remit = changes_of(&fixture("835.x12"), &config());
    let mut claim_first = Store::new();
    apply_all(&mut claim_first, &claim);
    apply_all(&mut claim_first, &remit);
    let mut remit_first = Store::new();
    apply_all(&mut remit_first, &remit);
    apply_all(&mut remit_first, &claim);
    assert_eq!(eobs(&claim_first), eobs(&remit_first));
    let eob = eob_with_account(&claim_first, "26463774");
    assert_eq!(unique_claim_id(eob), "119932404007801");
    assert_eq!(eob["item"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        eob["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"],
        "J02.0"
    );
    assert_eq!(total(eob, "paidtoprovider"), Some(80.0));
    assert_eq!(total(eob, "submitted"), Some(100.0));
    assert_eq!(eob["payment"]["type"]["coding"][0]["code"], "paid");
    // The 837's dependent patient wins over the 835's guess.
    assert_ne!(
        eob["patient"]["reference"],
        "Patient/patient-999996666-JS00111223333"
    );
    assert_eq!(
        eob["meta"]["profile"][0],
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician"
    );
}

#[test]
fn re_applying_the_same_change_is_a_no_op() {
    for name in [
        "837p.x12",
        "837i.x12",
        "837d.x12",
        "837p_cob.x12",
        "835.x12",
        "834.x12",
    ] {
        let changes = changes_of(&fixture(name), &config());
        let store = fold(&changes);
        for change in &changes {
            let current = store.get(&(change.resource_type, change.id.clone()));
            let again = apply(current, change);
            assert!(
                again.is_none(),
                "{name}: {} {}",
                change.id,
                again.unwrap_or_default()
            );
        }
        // And re-ingesting the whole file changes nothing.
        let mut twice = store.clone();
        apply_all(&mut twice, &changes);
        assert_eq!(twice, store, "{name}");
    }
}

/// `convert` writes each change as the store would first hold it, without a store:
/// the mapper's own text, and a Coverage an 837 names gets the default status.
#[test]
fn first_versions_are_what_apply_makes_of_nothing() {
    let generated = [
        x12::generate::generate_837p(40, 1),
        x12::generate::generate_837i(40, 2),
        x12::generate::generate_837d(40, 3),
        x12::generate::generate_835(40, 4),
        x12::generate::generate_834(40, 5),
    ];
    let fixtures = [
        "837p.x12",
        "837i.x12",
        "837d.x12",
        "837p_cob.x12",
        "835.x12",
        "834.x12",
        "278_pended.x12",
        "278_partial.x12",
        "278_request_response.x12",
    ]
    .map(|name| fixture(name).into_bytes());
    let mut coverages_completed = 0;
    for file in generated.iter().chain(&fixtures) {
        for change in changes_of(&String::from_utf8_lossy(file), &config()) {
            let Action::Merge(resource) = &change.action else {
                assert_eq!(edi_fhir::first_version_json(&change), None);
                continue;
            };
            let written = edi_fhir::first_version_json(&change).unwrap_or_default();
            let stored = apply(None, &change).unwrap_or_default();
            let written: Value = serde_json::from_str(&written).unwrap_or_default();
            assert_eq!(written, stored, "{} {}", change.resource_type, change.id);
            coverages_completed += usize::from(
                change.resource_type == ResourceType::Coverage
                    && !resource.json().contains("\"status\""),
            );
        }
    }
    assert!(
        coverages_completed > 0,
        "some 837 Coverage had no status of its own"
    );
}

#[test]
fn a_void_cancels() {
    let original = fixture("837p.x12");
    let void = edit(
        &original,
        "CLM*26463774*100***11:B:1*Y*A*Y*I",
        "CLM*26463774*100***11:B:8*Y*A*Y*I~REF*F8*119932404007801",
    );
    let void_changes = changes_of(&void, &config());
    assert!(
        void_changes
            .iter()
            .any(|c| matches!(c.action, Action::Cancel { .. }))
    );
    let mut store = fold(&changes_of(&original, &config()));
    apply_all(&mut store, &void_changes);
    assert_eq!(eob_with_account(&store, "26463774")["status"], "cancelled");
    // A void that arrives before the original: the original lands cancelled.
    let mut store = fold(&void_changes);
    apply_all(&mut store, &changes_of(&original, &config()));
    assert_eq!(eob_with_account(&store, "26463774")["status"], "cancelled");
    assert_eq!(eobs(&store).len(), 1);
}

#[test]
fn a_replacement_supersedes() {
    let original = fixture("837p.x12");
    let mut store = fold(&changes_of(&original, &config()));
    apply_all(&mut store, &changes_of(&fixture("835.x12"), &config()));
    let before = eob_with_account(&store, "26463774").clone();
    assert_eq!(unique_claim_id(&before), "119932404007801");
    let replacement = edit(
        &edit(
            &original,
            "CLM*26463774*100***11:B:1*Y*A*Y*I",
            "CLM*26463774*110***11:B:7*Y*A*Y*I~REF*F8*119932404007801",
        ),
        "SV1*HC:86663*10*UN*1***2",
        "SV1*HC:86663*20*UN*1***2",
    );
    apply_all(&mut store, &changes_of(&replacement, &config()));
    let after = eob_with_account(&store, "26463774");
    assert_eq!(after["id"], before["id"], "same EOB, new version");
    assert_eq!(after["status"], "active");
    assert_eq!(total(after, "submitted"), Some(110.0));
    assert_eq!(
        after["related"][0]["relationship"]["coding"][0]["code"],
        "prior"
    );
    assert_eq!(after["related"][0]["reference"]["value"], "119932404007801");
    // The replaced claim's payment no longer shows until it is re-adjudicated.
    assert!(after.get("payment").is_none(), "{after}");
}

#[test]
fn an_834_termination_ends_the_coverage() {
    let store = fold(&changes_of(&fixture("834.x12"), &config()));
    let mary = store
        .iter()
        .find(|((t, _), v)| *t == ResourceType::Coverage && v["subscriberId"] == "987654321")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(mary["period"]["end"], "2024-01-31", "{mary}");
    // Added earlier with a start date, the termination keeps the start.
    let add = edit(
        &fixture("834.x12"),
        "INS*Y*18*024*07*A***FT",
        "INS*Y*18*021*28*A***FT",
    );
    let add = edit(
        &add,
        "HD*024**HLT*PLAN B SILVER*EMP",
        "HD*021**HLT*PLAN B SILVER*EMP",
    );
    let add = edit(&add, "DTP*349*D8*20240131", "DTP*348*D8*20230101");
    let mut store = fold(&changes_of(&add, &config()));
    apply_all(&mut store, &changes_of(&fixture("834.x12"), &config()));
    let mary = store
        .iter()
        .find(|((t, _), v)| *t == ResourceType::Coverage && v["subscriberId"] == "987654321")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(mary["period"]["start"], "2023-01-01", "{mary}");
    assert_eq!(mary["period"]["end"], "2024-01-31");
    // Reinstating reopens it.
    let reinstate = edit(
        &add,
        "HD*021**HLT*PLAN B SILVER*EMP",
        "HD*025**HLT*PLAN B SILVER*EMP",
    );
    apply_all(&mut store, &changes_of(&reinstate, &config()));
    let mary = store
        .iter()
        .find(|((t, _), v)| *t == ResourceType::Coverage && v["subscriberId"] == "987654321")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(mary["status"], "active");
    assert!(mary["period"].get("end").is_none(), "{mary}");
}

#[test]
fn a_reversal_negates() {
    let remit = changes_of(&fixture("835.x12"), &config());
    let cancel = remit
        .iter()
        .find(|c| matches!(c.action, Action::Cancel { .. }))
        .cloned()
        .unwrap_or_else(|| panic!("no reversal"));
    let correction = remit
        .iter()
        .find(|c| c.id == cancel.id && matches!(c.action, Action::Merge(_)))
        .cloned()
        .unwrap_or_else(|| panic!("no correction"));
    // The original payment, as an earlier 835 would have carried it.
    let mut original = correction.clone();
    if let Action::Merge(resource) = &mut original.action {
        let mut v = resource.to_value();
        v["identifier"][0]["value"] = Value::from("119932404007700");
        v.as_object_mut().map(|o| o.remove("related"));
        *resource = Resource::from_value(&v);
    }
    let paid = apply(None, &original);
    let cancelled = apply(paid.as_ref(), &cancel);
    let cancelled = cancelled.unwrap_or_default();
    assert_eq!(cancelled["status"], "cancelled");
    // A re-sent copy of the reversed payment does not bring it back.
    assert_eq!(apply(Some(&cancelled), &original), None);
    // The correction does, linked to the reversed claim.
    let corrected = apply(Some(&cancelled), &correction).unwrap_or_default();
    assert_eq!(corrected["status"], "active");
    assert_eq!(unique_claim_id(&corrected), "119932404007801");
    assert_eq!(
        corrected["related"][0]["reference"]["value"],
        "119932404007700"
    );
    // A reversal before anything is known has nothing to cancel.
    assert_eq!(apply(None, &cancel), None);
}

#[test]
fn type_of_bill_decides_the_institutional_profile() {
    let store = fold(&changes_of(&fixture("837i.x12"), &config()));
    let eob = eob_with_account(&store, "756048Q");
    assert_eq!(eob["subType"]["coding"][0]["code"], "outpatient");
    assert_eq!(
        supporting(eob, "typeofbill").map(|s| &s["code"]["coding"][0]["code"]),
        Some(&Value::from("0141"))
    );
    assert_eq!(eob["item"][0]["revenue"]["coding"][0]["code"], "0305");
    let inpatient = edit(
        &fixture("837i.x12"),
        "CLM*756048Q*89.93***14:A:1**A*Y*Y",
        "CLM*756048Q*89.93***11:A:1**A*Y*Y",
    );
    let store = fold(&changes_of(&inpatient, &config()));
    let eob = eob_with_account(&store, "756048Q");
    assert_eq!(eob["subType"]["coding"][0]["code"], "inpatient");
    assert!(
        eob["meta"]["profile"][0]
            .as_str()
            .unwrap_or("")
            .ends_with("Inpatient-Institutional")
    );
}

#[test]
fn oral_lines_carry_tooth_surfaces_and_network_status() {
    let store = fold(&changes_of(&fixture("837d.x12"), &config()));
    let eob = eob_with_account(&store, "DENT0001");
    let item = &eob["item"][1];
    assert_eq!(item["bodySite"]["coding"][0]["code"], "30");
    assert_eq!(item["subSite"][1]["coding"][0]["code"], "O");
    assert_eq!(
        item["productOrService"]["coding"][0]["system"],
        "http://www.ada.org/cdt"
    );
    let status = item["adjudication"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["category"]["coding"][0]["code"] == "benefitpaymentstatus");
    assert_eq!(
        status.map(|s| &s["reason"]["coding"][0]["code"]),
        Some(&Value::from("innetwork"))
    );
}

#[test]
fn adjudication_inside_an_837_counts_only_for_the_plans_own_payer_id() {
    // As the secondary payer, Medicare's payment is a prior payer's.
    let store = fold(&changes_of(&fixture("837p_cob.x12"), &config()));
    let eob = eob_with_account(&store, "26463775");
    assert_eq!(total(eob, "priorpayerpaid"), Some(64.0));
    assert!(eob.get("payment").is_none());
    // Configured as Medicare itself, the same loops are our adjudication.
    let medicare = MappingConfig {
        payer_id: "00435".into(),
        ..config()
    };
    let store = fold(&changes_of(&fixture("837p_cob.x12"), &medicare));
    let eob = eob_with_account(&store, "26463775");
    assert_eq!(unique_claim_id(eob), "ICN778899");
    assert_eq!(total(eob, "paidtoprovider"), Some(64.0));
    assert_eq!(total(eob, "coinsurance"), Some(16.0));
    assert_eq!(total(eob, "discount"), Some(20.0));
    assert_eq!(eob["payment"]["date"], "2024-01-25");
    assert_eq!(eob["created"], "2024-01-25");
}

#[test]
fn a_wrong_component_separator_in_clm05_rejects_the_set_instead_of_guessing() {
    let bad = edit(
        &fixture("837p.x12"),
        "CLM*26463774*100***11:B:1*Y*A*Y*I",
        "CLM*26463774*100***11>B>1*Y*A*Y*I",
    );
    let conversion = convert(bad.as_bytes(), &config());
    let set = &conversion.transaction_sets[0];
    let SetOutcome::Rejected { problems } = &set.outcome else {
        panic!("accepted: {set:?}");
    };
    assert_eq!(problems[0].element.as_deref(), Some("CLM05-3"));
    assert_eq!(problems[0].segment_id.as_deref(), Some("CLM"));
    assert_eq!(conversion.changes().count(), 0);
}

#[test]
fn unsupported_and_broken_files_are_rejected_by_name() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../x12/tests/bad");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_default();
    let unknown = convert(&read("unknown_transaction.x12"), &config());
    let rejected: Vec<_> = unknown
        .transaction_sets
        .iter()
        .filter_map(|s| match &s.outcome {
            SetOutcome::Rejected { problems } => Some(problems),
            SetOutcome::Accepted { .. } => None,
        })
        .flatten()
        .collect();
    assert!(
        rejected.iter().any(|p| p.message.contains("not supported")),
        "{unknown:?}"
    );
    for name in ["not_x12.x12", "mismatched_iea02.x12", "truncated.x12"] {
        let c = convert(&read(name), &config());
        assert!(c.rejects_everything, "{name}");
        assert!(!c.file_problems.is_empty(), "{name}");
        assert_eq!(c.changes().count(), 0, "{name}");
    }
}

#[test]
fn verdicts_hand_out_one_set_at_a_time() {
    let text = fixture("835.x12");
    let mut seen = Vec::new();
    let summary = edi_fhir::verdicts(text.as_bytes(), &config(), |set| seen.push(set.clone()));
    assert_eq!(seen.len(), 1);
    assert_eq!(
        summary.interchange_control_number.as_deref(),
        Some("000000907")
    );
    assert!(!summary.rejects_everything);
    let report = serde_json::to_value(&seen[0]).unwrap_or_default();
    assert_eq!(report["outcome"]["status"], "accepted");
    assert_eq!(report["outcome"]["claims"], 3);
}

#[test]
fn shared_resources_merge_into_one_across_claims() {
    let bytes = x12::generate::generate_837p(50, 7);
    let conversion = convert(&bytes, &config());
    let changes: Vec<&Change> = conversion.changes().collect();
    let billing = changes
        .iter()
        .filter(|c| c.id == "org-npi-9876543210")
        .count();
    assert_eq!(billing, 1);
    let eob_count = changes
        .iter()
        .filter(|c| c.resource_type == ResourceType::ExplanationOfBenefit)
        .count();
    assert_eq!(eob_count, 50);
    for c in &changes {
        assert!(fhir::is_valid_id(&c.id), "{}", c.id);
    }
}

#[test]
fn streaming_one_change_at_a_time_ends_in_the_same_store() {
    for bytes in [
        x12::generate::generate_837p(300, 1),
        x12::generate::generate_837i(100, 2),
        x12::generate::generate_835(100, 3),
        x12::generate::generate_834(100, 4),
        fixture("835.x12").into_bytes(),
    ] {
        let whole = fold(convert(&bytes, &config()).changes());
        let mut streamed = Store::new();
        let mut sets = 0;
        let summary = edi_fhir::stream_changes(bytes.as_slice(), &config(), |event| match event {
            edi_fhir::Event::Set(_) => sets += 1,
            edi_fhir::Event::Change(c) => apply_all(&mut streamed, &[c]),
            edi_fhir::Event::SetEnd => {}
        });
        assert!(!summary.rejects_everything);
        assert_eq!(sets, 1);
        assert_eq!(streamed, whole);
    }
}

#[test]
fn a_claim_s_coverage_keeps_the_plan_class_the_834_gave_and_updates_the_group() {
    let class = |code: &str, value: &str| {
        serde_json::json!({
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                "code": code
            }]},
            "value": value
        })
    };
    let coverage = |classes: Vec<Value>| Change {
        resource_type: ResourceType::Coverage,
        id: "coverage-1".into(),
        action: Action::Merge(Resource::from_value(&serde_json::json!({
            "resourceType": "Coverage",
            "id": "coverage-1",
            "status": "active",
            "class": classes
        }))),
    };
    // The 834 names the group and the plan (HD04); the 837 knows only the group (SBR03).
    let enrolled = apply(
        None,
        &coverage(vec![class("group", "G1"), class("plan", "GOLD")]),
    );
    let claimed =
        apply(enrolled.as_ref(), &coverage(vec![class("group", "G2")])).unwrap_or_default();
    assert_eq!(
        claimed["class"],
        serde_json::json!([class("group", "G2"), class("plan", "GOLD")])
    );
}
