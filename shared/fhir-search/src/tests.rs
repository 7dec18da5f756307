//! Behaviour tests that read like the spec: CARIN / US Core searches and the
//! Inferno cases of the requirements notes, section (d) 21–33 and 47.

use fhir::{Instant, Reference, ResourceType};
use serde_json::{Value, json};

use crate::*;

use ResourceType::{
    Coverage, ExplanationOfBenefit as Eob, Organization, Patient, Practitioner, RelatedPerson,
};

const NOW: &str = "2026-01-01T00:00:00Z";
const UPDATED: &str = "2025-06-01T12:00:00.123Z";

/// Splits `a=b&c=d` without decoding (tests write values already decoded).
fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

fn parse(rt: ResourceType, query: &str) -> Result<SearchRequest, SearchError> {
    parse_search_at(
        rt,
        &pairs(query),
        Handling::Lenient,
        &Instant::parse(NOW).unwrap(),
    )
}

fn strict(rt: ResourceType, query: &str) -> Result<SearchRequest, SearchError> {
    parse_search_at(
        rt,
        &pairs(query),
        Handling::Strict,
        &Instant::parse(NOW).unwrap(),
    )
}

/// Does `resource` (id from its body, last updated at UPDATED) match `query`?
fn hits(rt: ResourceType, query: &str, resource: &Value) -> bool {
    let request = parse(rt, query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let id = resource["id"].as_str().unwrap_or("x");
    request.matches(
        id,
        &Instant::parse(UPDATED).unwrap(),
        &index_resource(rt, resource),
    )
}

fn eob() -> Value {
    json!({
        "resourceType": "ExplanationOfBenefit",
        "id": "E1",
        "patient": {"reference": "Patient/A"},
        "provider": {"reference": "Practitioner/P1"},
        "careTeam": [
            {"provider": {"reference": "Practitioner/P2"}},
            {"provider": {"reference": "https://example.org/fhir/Organization/O3/_history/2"}},
            {"provider": {"reference": "PractitionerRole/R9"}}
        ],
        "insurance": [{"focal": true, "coverage": {"reference": "Coverage/C1"}}],
        "insurer": {"reference": "Organization/O1"},
        "payee": {"party": {"reference": "Organization/O2"}},
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "pharmacy"}]},
        "identifier": [{
            "type": {"coding": [{"code": "uc"}]},
            "system": "https://plan.example.org/claim",
            "value": "CLM-1"
        }, {"value": "NOSYS-1"}],
        "billablePeriod": {"start": "2019-11-01", "end": "2019-11-05"},
        "item": [
            {"sequence": 1, "servicedDate": "2019-11-02"},
            {"sequence": 2, "servicedPeriod": {"start": "2019-11-03", "end": "2019-11-04"}}
        ]
    })
}

fn eob_with(patch: Value) -> Value {
    let mut base = eob();
    if let (Some(b), Value::Object(p)) = (base.as_object_mut(), patch) {
        for (k, v) in p {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
    base
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "A",
        "identifier": [{"system": "https://plan.example.org/member", "value": "M-100"}],
        "name": [{"text": "Dr. Zoë Müller-Smith", "family": "Müller-Smith", "given": ["Zoë", "Anne"], "prefix": ["Dr."]}],
        "birthDate": "1970-01-01",
        "gender": "female"
    })
}

fn coverage() -> Value {
    json!({
        "resourceType": "Coverage",
        "id": "C1",
        "beneficiary": {"reference": "Patient/A"},
        "subscriber": {"reference": "Patient/A"},
        "policyHolder": {"reference": "RelatedPerson/R1"},
        "payor": [{"reference": "Organization/O1"}]
    })
}

fn organization() -> Value {
    json!({
        "resourceType": "Organization",
        "id": "O1",
        "name": "Acme Health Plan",
        "alias": ["Acmé"],
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "address": [{"line": ["100 Main St"], "city": "Springfield", "state": "MA", "postalCode": "01101", "country": "US"}]
    })
}

fn practitioner() -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": "P1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9941339108"}],
        "name": [{"family": "Núñez", "given": ["José"], "prefix": ["Dr"]}]
    })
}

fn related_person() -> Value {
    json!({
        "resourceType": "RelatedPerson",
        "id": "R1",
        "patient": {"reference": "Patient/A"},
        "name": [{"family": "Smith", "given": ["Bob"]}]
    })
}

fn refs(index: &SearchIndex, param: &str) -> Vec<String> {
    index
        .references
        .iter()
        .filter(|(p, _)| p == param)
        .map(|(_, r)| r.relative())
        .collect()
}

// ---------------------------------------------------------------- index: compartment

#[test]
fn eob_compartment_is_its_patient_reference() {
    assert_eq!(
        index_resource(Eob, &eob()).compartment.as_deref(),
        Some("A")
    );
}

#[test]
fn coverage_compartment_is_the_beneficiary_not_another_patient_it_mentions() {
    let c =
        json!({"beneficiary": {"reference": "Patient/B"}, "payor": [{"reference": "Patient/A"}]});
    assert_eq!(
        index_resource(Coverage, &c).compartment.as_deref(),
        Some("B")
    );
}

#[test]
fn patient_compartment_is_its_own_id_and_related_person_its_patient() {
    assert_eq!(
        index_resource(Patient, &patient()).compartment.as_deref(),
        Some("A")
    );
    assert_eq!(
        index_resource(RelatedPerson, &related_person())
            .compartment
            .as_deref(),
        Some("A")
    );
}

#[test]
fn directory_types_and_non_patient_references_give_no_compartment() {
    assert_eq!(
        index_resource(Organization, &organization()).compartment,
        None
    );
    assert_eq!(
        index_resource(Practitioner, &practitioner()).compartment,
        None
    );
    let odd = eob_with(json!({"patient": {"reference": "Organization/O1"}}));
    assert_eq!(index_resource(Eob, &odd).compartment, None);
    let contained = eob_with(json!({"patient": {"reference": "#p"}}));
    assert_eq!(index_resource(Eob, &contained).compartment, None);
}

// ---------------------------------------------------------------- index: references

#[test]
fn eob_references_cover_every_include_and_skip_foreign_types() {
    let ix = index_resource(Eob, &eob());
    assert_eq!(refs(&ix, "patient"), ["Patient/A"]);
    assert_eq!(refs(&ix, "provider"), ["Practitioner/P1"]);
    assert_eq!(
        refs(&ix, "care-team"),
        ["Practitioner/P2", "Organization/O3"]
    );
    assert_eq!(refs(&ix, "coverage"), ["Coverage/C1"]);
    assert_eq!(refs(&ix, "insurer"), ["Organization/O1"]);
    assert_eq!(refs(&ix, "payee"), ["Organization/O2"]);
    let versioned = ix
        .references
        .iter()
        .find(|(_, r)| r.id == "O3")
        .map(|(_, r)| r.version);
    assert_eq!(
        versioned,
        Some(Some(2)),
        "versions are kept for vread-style includes"
    );
}

#[test]
fn coverage_references_name_patient_beneficiary_payor_subscriber_and_policy_holder() {
    let ix = index_resource(Coverage, &coverage());
    assert_eq!(refs(&ix, "patient"), ["Patient/A"]);
    assert_eq!(refs(&ix, "beneficiary"), ["Patient/A"]);
    assert_eq!(refs(&ix, "payor"), ["Organization/O1"]);
    assert_eq!(refs(&ix, "subscriber"), ["Patient/A"]);
    assert_eq!(refs(&ix, "policy-holder"), ["RelatedPerson/R1"]);
}

// ---------------------------------------------------------------- index: look-up terms

#[test]
fn member_types_have_no_lookup_terms_but_a_patients_roster_entry() {
    let roster = crate::roster::param(crate::roster::shard("A"));
    assert_eq!(
        index_resource(Patient, &patient()).lookup_terms,
        vec![(roster, "A".to_owned())]
    );
    assert!(index_resource(Eob, &eob()).lookup_terms.is_empty());
}

#[test]
fn roster_shards_are_stable_and_spread_members() {
    // Fixed values: a change would move stored members to other shards.
    assert_eq!(crate::roster::shard("A"), 204);
    assert_eq!(crate::roster::param(7), "_roster-007");
    let mut used = std::collections::BTreeSet::new();
    for i in 0..10_000 {
        let shard = crate::roster::shard(&format!("m{i:05}"));
        assert!(shard < crate::roster::SHARDS);
        used.insert(shard);
    }
    assert_eq!(used.len() as u32, crate::roster::SHARDS);
}

#[test]
fn practitioner_lookup_terms_are_folded_name_parts_and_exact_identifiers() {
    let terms = index_resource(Practitioner, &practitioner()).lookup_terms;
    let has = |p: &str, t: &str| terms.contains(&(p.to_owned(), t.to_owned()));
    assert!(has("name", "nunez") && has("name", "jose") && has("name", "dr"));
    assert!(has("identifier", "9941339108"));
}

#[test]
fn organization_lookup_terms_cover_name_alias_and_address_parts() {
    let terms = index_resource(Organization, &organization()).lookup_terms;
    let has = |p: &str, t: &str| terms.contains(&(p.to_owned(), t.to_owned()));
    assert!(has("name", "acme health plan") && has("name", "acme"));
    for part in ["100 main st", "springfield", "ma", "01101", "us"] {
        assert!(has("address", part), "{part}");
    }
    assert!(
        !terms.iter().any(|(p, _)| p == "identifier"),
        "Organization has no identifier search"
    );
}

#[test]
fn the_index_is_compact_and_round_trips_through_json() {
    let ix = index_resource(Eob, &eob());
    let text = serde_json::to_string(&ix).unwrap();
    assert!(text.contains("\"tk\"") && text.contains("\"dt\""));
    assert!(!text.contains("\"st\""), "no empty lists: {text}");
    assert_eq!(serde_json::from_str::<SearchIndex>(&text).unwrap(), ix);
    let old: SearchIndex = serde_json::from_str(r#"{"compartment":"A"}"#).unwrap();
    assert_eq!(old.compartment.as_deref(), Some("A"));
}

#[test]
fn unparseable_values_are_skipped_not_fatal() {
    let bad = eob_with(
        json!({"billablePeriod": {"start": "soon"}, "item": "nope", "type": 7, "identifier": [{}]}),
    );
    let ix = index_resource(Eob, &bad);
    assert!(ix.dates.is_empty() && ix.tokens.is_empty());
    let _ = index_resource(Patient, &json!([1, 2, 3]));
    let _ = index_resource(Organization, &Value::Null);
}

// ---------------------------------------------------------------- (d) 21–23 patient and _id

#[test]
fn patient_accepts_a_bare_id_a_relative_and_an_absolute_reference() {
    for q in [
        "patient=A",
        "patient=Patient/A",
        "patient=https://fhir.example.org/r4/Patient/A",
        "patient:Patient=A",
    ] {
        assert!(hits(Eob, q, &eob()), "{q}");
    }
    assert!(!hits(Eob, "patient=B", &eob()));
    assert!(hits(Eob, "patient=B,A", &eob()));
}

#[test]
fn patient_of_another_type_is_a_client_error() {
    assert!(parse(Eob, "patient=Organization/O1").is_err());
    assert!(parse(Eob, "patient:Organization=O1").is_err());
    assert!(parse(Eob, "patient=not an id").is_err());
}

#[test]
fn id_matches_one_or_any_of_several() {
    assert!(hits(Eob, "_id=E1", &eob()));
    assert!(hits(Eob, "_id=E2,E1", &eob()));
    assert!(!hits(Eob, "_id=E2", &eob()));
    assert!(!hits(Eob, "_id=E1&_id=E2", &eob()), "repeated = AND");
}

// ---------------------------------------------------------------- (d) 24 identifier

#[test]
fn identifier_matches_by_value_by_system_and_value_and_systemless() {
    assert!(hits(Eob, "identifier=CLM-1", &eob()));
    assert!(hits(
        Eob,
        "identifier=https://plan.example.org/claim|CLM-1",
        &eob()
    ));
    assert!(hits(
        Eob,
        "identifier=https://plan.example.org/claim|",
        &eob()
    ));
    assert!(!hits(Eob, "identifier=https://other|CLM-1", &eob()));
    assert!(
        !hits(Eob, "identifier=|CLM-1", &eob()),
        "|value matches only identifiers without a system"
    );
    assert!(hits(Eob, "identifier=|NOSYS-1", &eob()));
    assert!(parse(Eob, "identifier=|").is_err());
}

#[test]
fn an_escaped_comma_is_part_of_the_value_not_an_or() {
    let e = eob_with(json!({"identifier": [{"value": "A,B"}]}));
    assert!(hits(Eob, "identifier=A\\,B", &e));
    assert!(!hits(Eob, "identifier=A", &e));
    let r = parse(Eob, "identifier=A\\,B").unwrap();
    assert_eq!(r.canonical_query(), "identifier=A%5C,B");
}

// ---------------------------------------------------------------- (d) 25 type

#[test]
fn use_tells_prior_authorizations_from_claims() {
    let claim = eob_with(json!({"use": "claim"}));
    let prior_auth = eob_with(json!({"use": "preauthorization"}));
    assert!(hits(Eob, "use=preauthorization", &prior_auth));
    assert!(hits(
        Eob,
        "use=http://hl7.org/fhir/claim-use|preauthorization",
        &prior_auth
    ));
    assert!(!hits(Eob, "use=preauthorization", &claim));
    assert!(hits(Eob, "use=claim", &claim));
    assert!(hits(Eob, "use=claim,preauthorization", &prior_auth));
    assert!(hits(Eob, "patient=A&use=preauthorization", &prior_auth));
    assert!(!hits(Eob, "patient=B&use=preauthorization", &prior_auth));
}

#[test]
fn type_matches_by_code_by_system_and_code_and_by_any_of_several() {
    assert!(hits(Eob, "type=pharmacy", &eob()));
    assert!(hits(
        Eob,
        "type=http://terminology.hl7.org/CodeSystem/claim-type|pharmacy",
        &eob()
    ));
    assert!(hits(Eob, "type=pharmacy,oral", &eob()));
    assert!(!hits(Eob, "type=oral", &eob()));
    assert!(!hits(Eob, "type=|pharmacy", &eob()));
}

#[test]
fn token_codes_compare_case_sensitively_as_fhir_defines() {
    assert!(!hits(Eob, "type=Pharmacy", &eob()));
}

// ---------------------------------------------------------------- (d) 26–28 dates

#[test]
fn service_date_eq_matches_an_item_served_on_that_day() {
    assert!(hits(Eob, "service-date=2019-11-02", &eob()));
    assert!(
        hits(Eob, "service-date=2019-11", &eob()),
        "the month contains the whole billable period"
    );
}

#[test]
fn service_date_eq_requires_the_day_to_contain_the_period() {
    let only_period = eob_with(json!({"item": null}));
    assert!(!hits(Eob, "service-date=2019-11-02", &only_period));
    assert!(hits(Eob, "service-date=ap2019-11-02", &only_period));
}

#[test]
fn service_date_gt_matches_a_period_that_ends_after_the_instant() {
    for q in [
        "service-date=gt2019-11-01T00:00:00+00:00",
        "service-date=gt2019-11-01T00:00:00 00:00",
        "service-date=gt2019-11-04",
    ] {
        assert!(hits(Eob, q, &eob()), "{q}");
    }
    assert!(!hits(Eob, "service-date=gt2019-11-05", &eob()));
}

#[test]
fn service_date_sa_eb_and_ne_follow_r4() {
    let only_period = eob_with(json!({"item": null}));
    assert!(hits(Eob, "service-date=sa2019-10-31", &only_period));
    assert!(!hits(Eob, "service-date=sa2019-11-01", &only_period));
    assert!(
        hits(Eob, "service-date=sa2019-11-01", &eob()),
        "an item on 11-02 starts after the 1st"
    );
    assert!(hits(Eob, "service-date=eb2019-11-06", &only_period));
    assert!(!hits(Eob, "service-date=eb2019-11-05", &only_period));
    assert!(hits(Eob, "service-date=ne2018", &eob()));
    assert!(
        !hits(Eob, "service-date=ne2019-11-02", &eob()),
        "ne: no value may equal the day"
    );
}

#[test]
fn service_date_matches_open_ended_periods() {
    let open = eob_with(json!({"billablePeriod": {"start": "2019-11-01"}, "item": null}));
    assert!(hits(Eob, "service-date=gt2030", &open));
    assert!(!hits(Eob, "service-date=lt2019-11-01", &open));
    assert!(!hits(Eob, "service-date=2019", &open));
}

#[test]
fn service_start_date_uses_billable_start_served_date_and_served_period_start() {
    assert!(hits(
        Eob,
        "service-start-date=ge2019-01-01&service-start-date=lt2020-01-01",
        &eob()
    ));
    assert!(
        hits(Eob, "service-start-date=2019-11-03", &eob()),
        "item.servicedPeriod.start"
    );
    assert!(
        hits(Eob, "service-start-date=2019-11-02", &eob()),
        "item.servicedDate"
    );
    assert!(!hits(Eob, "service-start-date=2019-11-04", &eob()));
    assert!(!hits(Eob, "service-start-date=ge2020-01-01", &eob()));
}

#[test]
fn billable_period_start_at_month_precision_matches_any_start_in_that_month() {
    assert!(hits(Eob, "billable-period-start=2019-11", &eob()));
    assert!(!hits(Eob, "billable-period-start=2019-12", &eob()));
    assert!(
        !hits(Eob, "billable-period-start=2019-11-02", &eob()),
        "the item dates do not count here"
    );
}

#[test]
fn a_bad_date_is_a_client_error_naming_the_parameter() {
    let err = parse(Eob, "service-date=notadate").unwrap_err();
    assert_eq!(err.param, "service-date");
    assert!(err.to_string().contains("notadate"));
    assert!(parse(Eob, "_lastUpdated=2019-13-01").is_err());
    assert!(parse(Eob, "service-date=xx2019").is_err());
}

// ---------------------------------------------------------------- (d) 29 _lastUpdated

#[test]
fn last_updated_equals_the_exact_instant_and_its_coarser_precisions() {
    for q in [
        "_lastUpdated=2025-06-01T12:00:00.123Z",
        "_lastUpdated=2025-06-01T12:00:00.123+00:00",
        "_lastUpdated=2025-06-01T12:00:00Z",
        "_lastUpdated=2025-06-01",
        "_lastUpdated=ge2025-06-01T12:00:00.123Z",
        "_lastUpdated=gt2025-06-01T12:00:00.122Z",
    ] {
        assert!(hits(Eob, q, &eob()), "{q}");
    }
    assert!(!hits(
        Eob,
        "_lastUpdated=gt2025-06-01T12:00:00.123Z",
        &eob()
    ));
    assert!(!hits(Eob, "_lastUpdated=2025-06-01T12:00:00.124Z", &eob()));
}

// ---------------------------------------------------------------- (d) 30 combination

#[test]
fn combined_parameters_intersect() {
    let q = "patient=A&type=pharmacy&service-date=ge2019-01-01&_lastUpdated=lt2026-01-01";
    assert!(hits(Eob, q, &eob()));
    assert!(!hits(
        Eob,
        "patient=A&type=oral&service-date=ge2019-01-01",
        &eob()
    ));
    assert!(!hits(Eob, "patient=B&type=pharmacy", &eob()));
}

// ---------------------------------------------------------------- (d) 31–32 includes

fn targets(query: &str, source: &Value, rt: ResourceType) -> Vec<String> {
    let r = parse(rt, query).unwrap();
    let ix = index_resource(rt, source);
    let includes = r.includes().iter().chain(r.iterate_includes());
    includes
        .flat_map(|i| i.targets_of(&ix))
        .map(|r| r.relative())
        .collect()
}

#[test]
fn each_eob_include_selects_what_the_eob_references_there() {
    let cases = [
        ("patient", vec!["Patient/A"]),
        ("provider", vec!["Practitioner/P1"]),
        ("care-team", vec!["Practitioner/P2", "Organization/O3"]),
        ("coverage", vec!["Coverage/C1"]),
        ("insurer", vec!["Organization/O1"]),
        ("payee", vec!["Organization/O2"]),
    ];
    for (param, want) in cases {
        let q = format!("_id=E1&_include=ExplanationOfBenefit:{param}");
        assert_eq!(targets(&q, &eob(), Eob), want, "{param}");
    }
}

#[test]
fn includes_work_on_prior_authorizations_as_on_claims() {
    // A PDex Prior Authorization has no payee; the rest is an EOB's.
    let prior_auth = eob_with(json!({"use": "preauthorization", "payee": null}));
    let q = "use=preauthorization&_include=ExplanationOfBenefit:*";
    assert!(hits(Eob, q, &prior_auth));
    let mut got = targets(q, &prior_auth, Eob);
    got.sort();
    assert_eq!(
        got,
        [
            "Coverage/C1",
            "Organization/O1",
            "Organization/O3",
            "Patient/A",
            "Practitioner/P1",
            "Practitioner/P2"
        ]
    );
}

#[test]
fn include_star_selects_every_reference_and_nothing_else() {
    let mut got = targets("_include=ExplanationOfBenefit:*", &eob(), Eob);
    got.sort();
    let mut want = vec![
        "Coverage/C1",
        "Organization/O1",
        "Organization/O2",
        "Organization/O3",
        "Patient/A",
        "Practitioner/P1",
        "Practitioner/P2",
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn an_include_target_type_filters_the_references() {
    let got = targets(
        "_include=ExplanationOfBenefit:care-team:Organization",
        &eob(),
        Eob,
    );
    assert_eq!(got, ["Organization/O3"]);
    assert!(strict(Eob, "_include=ExplanationOfBenefit:insurer:Patient").is_err());
}

#[test]
fn include_iterate_coverage_payor_is_accepted_alongside_eob_coverage() {
    let r = parse(
        Eob,
        "patient=A&_include=ExplanationOfBenefit:coverage&_include:iterate=Coverage:payor",
    )
    .unwrap();
    assert_eq!(r.includes().len(), 1);
    let iterate = r.iterate_includes();
    assert_eq!(
        iterate,
        [IncludeRequest {
            source: Coverage,
            param: Some("payor"),
            target: None
        }]
    );
    let payors: Vec<Reference> = iterate[0].targets_of(&index_resource(Coverage, &coverage()));
    assert_eq!(payors, [Reference::new(Organization, "O1")]);
}

#[test]
fn coverage_payor_include_brings_the_payor() {
    assert_eq!(
        targets("_id=C1&_include=Coverage:payor", &coverage(), Coverage),
        ["Organization/O1"]
    );
}

#[test]
fn an_include_for_another_source_type_is_ignored_or_strictly_rejected() {
    let r = parse(Eob, "_include=Coverage:payor").unwrap();
    assert!(r.includes().is_empty());
    assert_eq!(r.ignored(), ["_include"]);
    assert!(strict(Eob, "_include=Coverage:payor").is_err());
    assert!(strict(Eob, "_include=ExplanationOfBenefit:nonsense").is_err());
    assert!(parse(Eob, "_include:foo=ExplanationOfBenefit:patient").is_err());
}

// ---------------------------------------------------------------- (d) 47 unknown parameters

#[test]
fn unknown_parameters_are_ignored_and_left_out_of_the_self_link() {
    let r = parse(Eob, "patient=A&foo=bar&_sort=-_lastUpdated&_summary=count").unwrap();
    assert_eq!(r.ignored(), ["foo", "_sort", "_summary"]);
    assert_eq!(r.canonical_query(), "patient=A");
}

#[test]
fn unknown_parameters_are_rejected_under_strict_handling() {
    let err = strict(Eob, "foo=bar").unwrap_err();
    assert_eq!(err.param, "foo");
    for q in [
        "_revinclude=Provenance:target",
        "_elements=id",
        "_total=accurate",
        "_contained=true",
    ] {
        assert!(strict(Eob, q).is_err(), "{q}");
    }
    assert!(strict(Eob, "patient=A&_count=5&_format=json&_pretty=true").is_ok());
}

#[test]
fn unsupported_modifiers_are_rejected_even_when_lenient() {
    for q in [
        "type:text=x",
        "type:not=x",
        "service-date:missing=true",
        "_id:exact=E1",
        "name:fuzzy=x",
    ] {
        let rt = if q.starts_with("name") { Patient } else { Eob };
        assert!(parse(rt, q).is_err(), "{q}");
    }
}

// ---------------------------------------------------------------- result parameters

#[test]
fn count_must_be_a_positive_whole_number() {
    assert_eq!(parse(Eob, "_count=5").unwrap().count(), Some(5));
    assert_eq!(parse(Eob, "patient=A").unwrap().count(), None);
    for bad in [
        "_count=0",
        "_count=-1",
        "_count=ten",
        "_count=",
        "_count=99999999999",
        "_count=5&_count=6",
    ] {
        assert!(parse(Eob, bad).is_err(), "{bad}");
    }
}

#[test]
fn canonical_query_is_stable_encoded_and_leaves_out_paging_and_format() {
    let a = parse(Eob, "type=pharmacy&patient=A&_count=5&_format=json&service-date=gt2019-11-01T00:00:00 00:00&_include=ExplanationOfBenefit:patient").unwrap();
    let b = parse(Eob, "_include=ExplanationOfBenefit:patient&service-date=gt2019-11-01T00:00:00+00:00&patient=A&type=pharmacy").unwrap();
    let want = "patient=A&service-date=gt2019-11-01T00:00:00%2B00:00&type=pharmacy&_include=ExplanationOfBenefit:patient";
    assert_eq!(a.canonical_query(), want);
    assert_eq!(b.canonical_query(), want);
}

#[test]
fn canonical_query_parses_back_to_the_same_request() {
    let q = "identifier=http://x|y%20z&name:contains=mü&_include:iterate=Coverage:payor";
    let original = parse(
        Patient,
        "identifier=http://x|y z&name:contains=mü&_include:iterate=Coverage:payor",
    )
    .unwrap();
    let canonical = original.canonical_query();
    let decoded: Vec<(String, String)> = canonical
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let again = parse_search_at(
        Patient,
        &decoded,
        Handling::Strict,
        &Instant::parse(NOW).unwrap(),
    )
    .unwrap();
    assert_eq!(again, original, "{q}");
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn empty_values_are_ignored_leniently() {
    let r = parse(Eob, "patient=&_include=").unwrap();
    assert!(!r.has_criteria());
    assert!(strict(Eob, "patient=").is_err());
}

// ---------------------------------------------------------------- US Core Patient

#[test]
fn patient_name_is_a_case_and_accent_insensitive_prefix_of_any_part() {
    for q in [
        "name=muller",
        "name=MÜLLER-S",
        "name=zoe",
        "name=anne",
        "name=dr",
        "name=Dr. Zoë",
    ] {
        assert!(hits(Patient, q, &patient()), "{q}");
    }
    assert!(
        !hits(Patient, "name=smith", &patient()),
        "starts-with, not contains"
    );
    assert!(hits(Patient, "name:contains=smith", &patient()));
    assert!(hits(Patient, "name:exact=Zoë", &patient()));
    assert!(!hits(Patient, "name:exact=zoe", &patient()));
}

#[test]
fn family_and_given_search_only_their_own_parts() {
    assert!(hits(Patient, "family=muller", &patient()));
    assert!(!hits(Patient, "family=zoe", &patient()));
    assert!(hits(Patient, "given=zo", &patient()));
    assert!(!hits(Patient, "given=muller", &patient()));
}

#[test]
fn patient_birthdate_gender_identifier_and_the_us_core_combinations() {
    assert!(hits(
        Patient,
        "name=muller&birthdate=1970-01-01",
        &patient()
    ));
    assert!(hits(Patient, "gender=female&name=zoe", &patient()));
    assert!(hits(
        Patient,
        "gender=http://hl7.org/fhir/administrative-gender|female",
        &patient()
    ));
    assert!(hits(Patient, "birthdate=1970&family=muller", &patient()));
    assert!(hits(Patient, "birthdate=lt1971", &patient()));
    assert!(!hits(Patient, "birthdate=1970-01-02", &patient()));
    assert!(!hits(Patient, "gender=male", &patient()));
    assert!(hits(Patient, "identifier=M-100", &patient()));
    assert!(hits(Patient, "_id=A", &patient()));
}

// ---------------------------------------------------------------- other resources

#[test]
fn coverage_patient_searches_the_beneficiary() {
    assert!(hits(Coverage, "patient=A", &coverage()));
    assert!(hits(Coverage, "patient=Patient/A", &coverage()));
    assert!(!hits(Coverage, "patient=B", &coverage()));
    assert_eq!(
        parse(Coverage, "type=x").unwrap().ignored(),
        ["type"],
        "not a Coverage parameter"
    );
}

#[test]
fn organization_name_covers_alias_and_address_covers_every_part() {
    assert!(hits(Organization, "name=acme health", &organization()));
    assert!(hits(Organization, "name:exact=Acmé", &organization()));
    assert!(hits(Organization, "address=springf", &organization()));
    assert!(hits(Organization, "address=01101", &organization()));
    assert!(hits(Organization, "address:contains=main", &organization()));
    assert!(!hits(Organization, "address=boston", &organization()));
}

#[test]
fn practitioner_and_related_person_searches() {
    assert!(hits(Practitioner, "name=nunez", &practitioner()));
    assert!(hits(
        Practitioner,
        "identifier=http://hl7.org/fhir/sid/us-npi|9941339108",
        &practitioner()
    ));
    assert!(hits(RelatedPerson, "patient=A&name=bob", &related_person()));
    assert!(!hits(RelatedPerson, "patient=B", &related_person()));
}

// ---------------------------------------------------------------- planning hints

#[test]
fn ids_and_patient_ids_intersect_repeated_criteria() {
    let r = parse(Eob, "_id=E1,E2,E3&_id=E3,E2,bad id").unwrap();
    assert_eq!(r.ids(), Some(vec!["E2".to_owned(), "E3".to_owned()]));
    assert_eq!(parse(Eob, "type=oral").unwrap().ids(), None);
    let p = parse(Eob, "patient=Patient/A,B&patient=A").unwrap();
    assert_eq!(p.patient_ids(), Some(vec!["A".to_owned()]));
    assert_eq!(parse(Eob, "_id=bad id").unwrap().ids(), Some(vec![]));
}

#[test]
fn last_updated_bounds_narrow_conservatively() {
    let at = |s: &str| Some(Instant::parse(s).unwrap());
    let r = parse(Eob, "_lastUpdated=ge2025-01-01&_lastUpdated=lt2025-02-01").unwrap();
    assert_eq!(
        r.last_updated_bounds(),
        (at("2025-01-01T00:00:00Z"), at("2025-02-01T00:00:00Z"))
    );
    let eq = parse(Eob, "_lastUpdated=2025-06").unwrap();
    assert_eq!(
        eq.last_updated_bounds(),
        (at("2025-06-01T00:00:00Z"), at("2025-07-01T00:00:00Z"))
    );
    let gt = parse(Eob, "_lastUpdated=gt2025-06-01").unwrap();
    assert_eq!(gt.last_updated_bounds(), (at("2025-06-02T00:00:00Z"), None));
    let le = parse(Eob, "_lastUpdated=le2025-06-01").unwrap();
    assert_eq!(le.last_updated_bounds(), (None, at("2025-06-02T00:00:00Z")));
    assert_eq!(
        parse(Eob, "_lastUpdated=ne2025")
            .unwrap()
            .last_updated_bounds(),
        (None, None)
    );
    let or = parse(Eob, "_lastUpdated=2025-01,2025-03").unwrap();
    assert_eq!(
        or.last_updated_bounds(),
        (at("2025-01-01T00:00:00Z"), at("2025-04-01T00:00:00Z"))
    );
    let mixed = parse(Eob, "_lastUpdated=2025-01,ne2025-03").unwrap();
    assert_eq!(mixed.last_updated_bounds(), (None, None));
}

#[test]
fn last_updated_bounds_never_exclude_a_match() {
    let prefixes = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];
    let values = [
        "2025-06",
        "2025-06-01",
        "2025-06-01T12:00:00Z",
        "2025-06-01T12:00:00.123Z",
        "2025",
    ];
    let base = Instant::parse(UPDATED).unwrap().unix_millis();
    for p in prefixes {
        for v in values {
            let r = parse(Eob, &format!("_lastUpdated={p}{v}")).unwrap();
            let (from, to) = r.last_updated_bounds();
            for delta in [-86_400_001, -1000, -1, 0, 1, 877, 1000, 86_400_000] {
                let at = Instant::from_unix_millis(base + delta).unwrap();
                if r.matches("E1", &at, &SearchIndex::default()) {
                    assert!(from.as_ref().is_none_or(|f| f <= &at), "{p}{v} {at}");
                    assert!(to.as_ref().is_none_or(|t| &at < t), "{p}{v} {at}");
                }
            }
        }
    }
}

#[test]
fn lookup_hints_prefer_identifier_then_name_and_skip_contains_and_ors() {
    let hint = |rt, q| parse(rt, q).unwrap().lookup_hint();
    let h = |p: &'static str, s: &str| {
        Some(LookupHint {
            param: p,
            prefix: s.to_owned(),
        })
    };
    assert_eq!(
        hint(Practitioner, "name=Núñ&identifier=http://x|9941339108"),
        h("identifier", "9941339108")
    );
    assert_eq!(hint(Practitioner, "name=Núñ"), h("name", "nun"));
    assert_eq!(
        hint(Organization, "address=Springfield"),
        h("address", "springfield")
    );
    assert_eq!(hint(Organization, "name:exact=Acmé"), h("name", "acme"));
    assert_eq!(hint(Organization, "name:contains=acme"), None);
    assert_eq!(hint(Organization, "name=a,b"), None);
    assert_eq!(
        hint(Patient, "name=zoe"),
        None,
        "member-owned types use the compartment"
    );
}

// ---------------------------------------------------------------- robustness

#[test]
fn no_input_makes_parsing_or_matching_panic() {
    let nasty = [
        "",
        "=",
        "&&",
        "a",
        "_count",
        "service-date=gt",
        "service-date=ge2019-11-01T00:00:00+99:99",
        "service-date=2019-11-01T",
        "service-date=é2019",
        "service-date=ap0001",
        "service-date=ap9998-12-31T23:59:59.999Z",
        "identifier=\\",
        "identifier=a\\",
        "identifier=|||",
        "_id=,",
        "_include=:",
        "_include=::::",
        "_include=ExplanationOfBenefit",
        "patient=Patient/",
        "patient=/",
        "patient=Patient/A/_history/x",
        "name:=x",
        ":=x",
        "type:=x",
        "_lastUpdated=ap2019",
        "service-date=2019-11-01T00:00:00.99999999999999999999Z",
        "identifier=😀|😀",
        "service-date=gt😀",
    ];
    let ix = index_resource(Eob, &eob());
    for rt in ResourceType::ALL {
        for q in nasty {
            for handling in [Handling::Lenient, Handling::Strict] {
                if let Ok(r) =
                    parse_search_at(rt, &pairs(q), handling, &Instant::parse(NOW).unwrap())
                {
                    let _ = r.matches("E1", &Instant::parse(UPDATED).unwrap(), &ix);
                    let _ = (
                        r.canonical_query(),
                        r.ids(),
                        r.patient_ids(),
                        r.last_updated_bounds(),
                        r.lookup_hint(),
                    );
                }
            }
        }
    }
}

#[test]
fn search_errors_read_as_plain_diagnostics() {
    let err = parse(Eob, "_count=0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "search parameter '_count': '0' is not a positive whole number"
    );
}

// ---------------------------------------------------------------- Consent (app grants)

fn consent(status: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "id": "G1",
        "status": status,
        "patient": {"reference": "Patient/A"},
        "performer": [{"reference": "Patient/B"}],
    })
}

#[test]
fn consent_compartment_is_its_patient_not_another_reference() {
    let ix = index_resource(ResourceType::Consent, &consent("active"));
    assert_eq!(ix.compartment.as_deref(), Some("A"));
    assert_eq!(refs(&ix, "patient"), ["Patient/A"]);
}

#[test]
fn consent_searches_by_patient_status_id_and_last_updated() {
    let c = ResourceType::Consent;
    assert!(hits(c, "patient=A&status=active", &consent("active")));
    assert!(hits(
        c,
        "status=http://hl7.org/fhir/consent-state-codes|inactive",
        &consent("inactive")
    ));
    assert!(!hits(c, "status=active", &consent("inactive")));
    assert!(!hits(c, "patient=B", &consent("active")));
    assert!(hits(c, "_id=G1", &consent("active")));
    assert!(parse(c, "_lastUpdated=gt2020-01-01").is_ok());
    assert!(strict(c, "_include=Consent:patient").is_err());
}
