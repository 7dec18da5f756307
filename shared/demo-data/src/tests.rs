//! The generated data checked against the CARIN rules it promises to follow.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fhir::{Reference, ResourceType, is_valid_id};
use serde_json::Value;

use crate::{DemoConfig, DemoData, generate};
use fhir::systems::{self, ADJUDICATION, C4BB_ADJUDICATION};

/// Spells a CARIN code system from its name, independently of `fhir::systems`.
fn carin_code_system(name: &str) -> String {
    format!("http://hl7.org/fhir/us/carin-bb/CodeSystem/{name}")
}

fn data() -> DemoData {
    generate(&DemoConfig::default())
}

fn of_type(d: &DemoData, t: ResourceType) -> impl Iterator<Item = &Value> {
    d.resources
        .iter()
        .filter(move |(rt, ..)| *rt == t)
        .map(|(.., v)| v)
}

fn by_reference(d: &DemoData) -> HashMap<String, &Value> {
    d.resources
        .iter()
        .map(|(t, id, v)| (format!("{t}/{id}"), v))
        .collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn arr(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn has_coding(concept: &Value, system: &str, code: &str) -> bool {
    arr(concept, "coding")
        .iter()
        .any(|c| c["system"] == system && c["code"] == code)
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 100.0).round() as i64
}

/// Amount per CARIN category (HL7 or C4BB system) in one adjudication list.
fn amounts(entries: &[Value]) -> BTreeMap<String, i64> {
    entries
        .iter()
        .filter(|e| e.get("amount").is_some())
        .filter_map(|e| {
            let c = &e["category"]["coding"][0];
            let s = c["system"].as_str()?;
            let code = c["code"].as_str()?.to_owned();
            (s == ADJUDICATION || s == C4BB_ADJUDICATION)
                .then(|| (code, cents(&e["amount"]["value"])))
        })
        .collect()
}

fn collect_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => collect_references(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

#[test]
fn every_eob_has_exactly_one_uniqueclaimid_identifier_with_a_value() {
    for eob in of_type(&data(), ResourceType::ExplanationOfBenefit) {
        let uc: Vec<Value> = arr(eob, "identifier")
            .into_iter()
            .filter(|i| has_coding(&i["type"], &carin_code_system("C4BBIdentifierType"), "uc"))
            .collect();
        assert_eq!(uc.len(), 1, "{}", eob["id"]);
        assert!(!str_at(&uc[0], "/value").is_empty());
    }
}

#[test]
fn every_eob_is_active_a_claim_and_complete() {
    for eob in of_type(&data(), ResourceType::ExplanationOfBenefit) {
        assert_eq!(eob["status"], "active");
        assert_eq!(eob["use"], "claim");
        assert_eq!(eob["outcome"], "complete", "Inferno outcome_complete");
        assert!(!arr(eob, "item").is_empty(), "CARIN 2.x: item 1..*");
        assert!(eob.pointer("/meta/lastUpdated").is_some());
    }
}

#[test]
fn every_eob_claims_its_specific_profile_and_the_matching_type() {
    let expected = [
        (
            "Inpatient-Institutional",
            "institutional",
            Some("inpatient"),
        ),
        (
            "Outpatient-Institutional",
            "institutional",
            Some("outpatient"),
        ),
        ("Professional-NonClinician", "professional", None),
        ("Oral", "oral", None),
        ("Pharmacy", "pharmacy", None),
    ];
    for eob in of_type(&data(), ResourceType::ExplanationOfBenefit) {
        let profile = str_at(eob, "/meta/profile/0");
        let (_, ty, sub) = expected
            .iter()
            .find(|(suffix, ..)| {
                profile == format!("{}C4BB-ExplanationOfBenefit-{suffix}", systems::CARIN_SD)
            })
            .unwrap_or_else(|| panic!("unexpected profile {profile}"));
        assert!(has_coding(&eob["type"], systems::CLAIM_TYPE, ty));
        assert_eq!(
            eob.pointer("/subType/coding/0/code")
                .and_then(Value::as_str),
            *sub
        );
    }
}

#[test]
fn one_focal_insurance_whose_coverage_payor_is_the_insurer() {
    let d = data();
    let index = by_reference(&d);
    for eob in of_type(&d, ResourceType::ExplanationOfBenefit) {
        let insurance = arr(eob, "insurance");
        assert_eq!(insurance.iter().filter(|i| i["focal"] == true).count(), 1);
        for i in insurance {
            let coverage = index[str_at(&i, "/coverage/reference")];
            let same = str_at(coverage, "/payor/0/reference") == str_at(eob, "/insurer/reference");
            // Inferno insurer_same: focal ⇒ same payor, non-focal ⇒ a different one.
            assert_eq!(same, i["focal"] == true, "{}", eob["id"]);
            assert_eq!(
                str_at(coverage, "/beneficiary/reference"),
                str_at(eob, "/patient/reference")
            );
        }
    }
}

#[test]
fn adjudication_arithmetic_holds_on_every_line_and_totals_add_up() {
    for eob in of_type(&data(), ResourceType::ExplanationOfBenefit) {
        let mut sum: BTreeMap<String, i64> = BTreeMap::new();
        for item in arr(eob, "item") {
            let a = amounts(&arr(&item, "adjudication"));
            let g = |k: &str| a.get(k).copied().unwrap_or(0);
            assert_eq!(
                g("eligible"),
                g("submitted") - g("noncovered") - g("discount"),
                "{}",
                eob["id"]
            );
            assert_eq!(
                g("memberliability"),
                g("deductible") + g("coinsurance") + g("copay") + g("noncovered")
            );
            assert_eq!(g("benefit"), g("paidtoprovider") + g("paidtopatient"));
            assert_eq!(
                g("benefit") + g("memberliability") + g("discount"),
                g("submitted")
            );
            assert!(a.values().all(|v| *v >= 0));
            for (k, v) in a {
                *sum.entry(k).or_default() += v;
            }
        }
        assert_eq!(amounts(&arr(eob, "total")), sum, "{}", eob["id"]);
        assert_eq!(cents(&eob["payment"]["amount"]["value"]), sum["benefit"]);
    }
}

#[test]
fn every_eob_states_its_network_status() {
    for eob in of_type(&data(), ResourceType::ExplanationOfBenefit) {
        let mut entries = arr(eob, "adjudication");
        entries.extend(arr(eob, "item").iter().flat_map(|i| arr(i, "adjudication")));
        assert!(
            entries
                .iter()
                .any(|e| e.pointer("/category/coding/0/code")
                    == Some(&"benefitpaymentstatus".into()))
        );
    }
}

#[test]
fn every_reference_is_relative_and_resolves_to_a_generated_resource() {
    let d = data();
    let index = by_reference(&d);
    for (_, id, resource) in &d.resources {
        let mut refs = Vec::new();
        collect_references(resource, &mut refs);
        for r in refs {
            let parsed = Reference::parse(&r).unwrap_or_else(|| panic!("{id}: bad reference {r}"));
            assert_eq!(parsed.relative(), r, "relative and unversioned");
            assert!(index.contains_key(&r), "{id}: dangling {r}");
        }
    }
}

#[test]
fn ids_are_valid_fhir_ids_unique_per_type_and_match_the_json() {
    let d = data();
    let mut seen = BTreeSet::new();
    for (t, id, v) in &d.resources {
        assert!(is_valid_id(id), "{id}");
        assert!(seen.insert((*t, id.clone())), "duplicate {t}/{id}");
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["resourceType"], t.as_str());
        assert!(
            v.pointer("/meta/profile/0")
                .and_then(Value::as_str)
                .is_some_and(|p| p.starts_with(systems::CARIN_SD))
        );
    }
}

#[test]
fn claim_numbers_are_unique() {
    let d = data();
    let numbers: Vec<&str> = of_type(&d, ResourceType::ExplanationOfBenefit)
        .map(|e| str_at(e, "/identifier/0/value"))
        .collect();
    let unique: BTreeSet<&str> = numbers.iter().copied().collect();
    assert_eq!(unique.len(), numbers.len());
}

#[test]
fn same_seed_gives_byte_identical_output_and_another_seed_does_not() {
    let text = |d: DemoData| {
        serde_json::to_string(&d.resources.iter().map(|(.., v)| v).collect::<Vec<_>>()).unwrap()
    };
    let config = DemoConfig::default();
    assert_eq!(text(generate(&config)), text(generate(&config)));
    assert_ne!(
        text(generate(&config)),
        text(generate(&DemoConfig { seed: 1, ..config }))
    );
}

#[test]
fn adding_members_leaves_earlier_members_unchanged() {
    let small = generate(&DemoConfig {
        members: 2,
        ..DemoConfig::default()
    });
    let large = generate(&DemoConfig {
        members: 4,
        ..DemoConfig::default()
    });
    assert!(small.resources.iter().all(|r| large.resources.contains(r)));
    assert_eq!(small.members[..], large.members[..2]);
}

#[test]
fn every_member_has_every_carin_eob_type_and_the_configured_count() {
    let d = data();
    for m in &d.members {
        let mine: Vec<&Value> = of_type(&d, ResourceType::ExplanationOfBenefit)
            .filter(|e| str_at(e, "/patient/reference") == format!("Patient/{}", m.patient_id))
            .collect();
        assert_eq!(mine.len(), DemoConfig::default().eobs_per_member);
        let profiles: BTreeSet<&str> = mine.iter().map(|e| str_at(e, "/meta/profile/0")).collect();
        assert_eq!(profiles.len(), 5, "{}", m.patient_id);
    }
}

#[test]
fn replaced_claims_are_linked_both_ways_to_the_immediate_neighbour() {
    let d = data();
    let by_number: HashMap<&str, &Value> = of_type(&d, ResourceType::ExplanationOfBenefit)
        .map(|e| (str_at(e, "/identifier/0/value"), e))
        .collect();
    let mut pairs = 0;
    for eob in by_number.values() {
        for rel in arr(eob, "related") {
            let other = by_number[str_at(&rel, "/reference/value")];
            let back = if str_at(&rel, "/relationship/coding/0/code") == "prior" {
                "replacedby"
            } else {
                "prior"
            };
            assert!(arr(other, "related").iter().any(|r| {
                str_at(r, "/relationship/coding/0/code") == back
                    && str_at(r, "/reference/value") == str_at(eob, "/identifier/0/value")
            }));
            pairs += 1;
        }
    }
    assert_eq!(pairs, 2 * 5 * (36 / 12));
}

#[test]
fn dependents_have_a_subscriber_related_person_who_is_a_payee() {
    let d = data();
    let payees: BTreeSet<&str> = of_type(&d, ResourceType::ExplanationOfBenefit)
        .map(|e| str_at(e, "/payee/party/reference"))
        .collect();
    let related: Vec<&Value> = of_type(&d, ResourceType::RelatedPerson).collect();
    assert_eq!(related.len(), 2);
    for rp in related {
        assert!(payees.contains(format!("RelatedPerson/{}", rp["id"].as_str().unwrap()).as_str()));
    }
    let relationships: BTreeSet<&str> = of_type(&d, ResourceType::Coverage)
        .map(|c| str_at(c, "/relationship/coding/0/code"))
        .collect();
    assert_eq!(relationships, BTreeSet::from(["child", "self", "spouse"]));
}

#[test]
fn codes_use_the_formats_carin_expects() {
    for eob in of_type(&data(), ResourceType::ExplanationOfBenefit) {
        for d in arr(eob, "diagnosis") {
            let code = str_at(&d, "/diagnosisCodeableConcept/coding/0/code");
            assert!(
                code.len() == 3 || code.as_bytes()[3] == b'.',
                "ICD-10-CM dotted: {code}"
            );
        }
        for item in arr(eob, "item") {
            let c = &item["productOrService"]["coding"][0];
            if c["system"] == systems::NDC {
                let ndc = c["code"].as_str().unwrap();
                assert!(
                    ndc.len() == 11 && ndc.bytes().all(|b| b.is_ascii_digit()),
                    "{ndc}"
                );
            }
        }
        if str_at(eob, "/subType/coding/0/code") == "inpatient" {
            assert!(!arr(eob, "procedure").is_empty());
        }
    }
}

#[test]
fn service_dates_spread_over_2019_to_2026() {
    let years: BTreeSet<String> = of_type(&data(), ResourceType::ExplanationOfBenefit)
        .map(|e| str_at(e, "/billablePeriod/start")[..4].to_owned())
        .collect();
    let expected: BTreeSet<String> = (2019..=2026).map(|y| y.to_string()).collect();
    assert_eq!(years, expected);
}

#[test]
fn member_identities_match_their_patient_resources() {
    let d = data();
    let index = by_reference(&d);
    for m in &d.members {
        let p = index[&format!("Patient/{}", m.patient_id)];
        assert_eq!(str_at(p, "/identifier/0/value"), m.member_id);
        assert!(has_coding(
            &p["identifier"][0]["type"],
            systems::V2_0203,
            "MB"
        ));
        assert_eq!(str_at(p, "/name/0/family"), m.family);
        assert_eq!(str_at(p, "/name/0/given/0"), m.given);
        assert_eq!(str_at(p, "/birthDate"), m.birth_date);
        assert_eq!(str_at(p, "/telecom/0/value"), m.email);
        assert_eq!(str_at(p, "/address/0/postalCode"), m.postal_code);
    }
    let emails: BTreeSet<&str> = d.members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails.len(), d.members.len());
}
