//! Parsing and matching, spec by spec.

use fhir::{Instant, ResourceType};
use fhir_search::Handling;
use serde_json::json;

use crate::{Resolved, index_directory_resource, parse_directory_search};

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn now() -> Instant {
    Instant::parse("2026-01-01T00:00:00Z").expect("instant")
}

fn role() -> serde_json::Value {
    json!({
        "resourceType": "PractitionerRole", "id": "r1", "active": true,
        "practitioner": {"reference": "Practitioner/p1"},
        "location": [{"reference": "Location/l1"}],
        "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "207Q00000X", "display": "Family Medicine Physician"}]}],
        "extension": [{"url": "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference", "valueReference": {"reference": "Organization/net1"}}]
    })
}

fn matches(t: ResourceType, resource: &serde_json::Value, query: &[(&str, &str)]) -> bool {
    let search = parse_directory_search(t, &params(query), Handling::Strict).expect("parses");
    let index = index_directory_resource(t, resource);
    search.matches("r1", &now(), &index, &Resolved::default())
}

#[test]
fn tokens_match_by_code_system_and_text() {
    let r = role();
    let t = ResourceType::PractitionerRole;
    assert!(matches(t, &r, &[("specialty", "207Q00000X")]));
    assert!(matches(
        t,
        &r,
        &[("specialty", "http://nucc.org/provider-taxonomy|207Q00000X")]
    ));
    assert!(!matches(t, &r, &[("specialty", "|207Q00000X")]));
    assert!(matches(t, &r, &[("specialty:text", "family med")]));
    assert!(matches(t, &r, &[("specialty:text", "medicine")]));
    assert!(!matches(t, &r, &[("specialty:text", "cardio")]));
}

#[test]
fn references_match_by_id_type_and_extension_path() {
    let r = role();
    let t = ResourceType::PractitionerRole;
    assert!(matches(t, &r, &[("practitioner", "p1")]));
    assert!(matches(t, &r, &[("practitioner", "Practitioner/p1")]));
    assert!(matches(t, &r, &[("network", "Organization/net1")]));
    assert!(!matches(t, &r, &[("network", "net2")]));
    assert!(matches(t, &r, &[("location", "l2,l1")]));
}

#[test]
fn strings_match_prefix_exact_and_contains() {
    let p = json!({"resourceType": "Practitioner", "name": [{"family": "Moreno", "given": ["Alicia"]}]});
    let t = ResourceType::Practitioner;
    assert!(matches(t, &p, &[("name", "mor")]));
    assert!(matches(t, &p, &[("family", "MORENO")]));
    assert!(matches(t, &p, &[("family:exact", "Moreno")]));
    assert!(!matches(t, &p, &[("family:exact", "moreno")]));
    assert!(matches(t, &p, &[("given:contains", "lic")]));
    assert!(!matches(t, &p, &[("given", "lic")]));
}

#[test]
fn chains_and_has_parse_against_the_declared_chains() {
    let t = ResourceType::PractitionerRole;
    let ok = parse_directory_search(
        t,
        &params(&[
            ("location.address-city", "Columbus"),
            ("practitioner.name", "mor"),
        ]),
        Handling::Strict,
    )
    .expect("declared chains");
    assert_eq!(ok.chains.len(), 2);
    let undeclared = parse_directory_search(
        t,
        &params(&[("practitioner.identifier", "1")]),
        Handling::Lenient,
    );
    assert!(
        undeclared.is_err(),
        "an undeclared chain is a 400, even when lenient"
    );
    let has = parse_directory_search(
        ResourceType::Practitioner,
        &params(&[("_has:PractitionerRole:practitioner:specialty", "207Q00000X")]),
        Handling::Strict,
    )
    .expect("_has");
    assert_eq!(has.has.len(), 1);
    let wrong = parse_directory_search(
        ResourceType::Practitioner,
        &params(&[("_has:PractitionerRole:location:specialty", "x")]),
        Handling::Strict,
    );
    assert!(wrong.is_err(), "location does not point at Practitioner");
}

#[test]
fn unknown_parameters_follow_the_patient_access_rule() {
    let t = ResourceType::Location;
    let lenient = parse_directory_search(t, &params(&[("colour", "red")]), Handling::Lenient)
        .expect("ignored");
    assert_eq!(lenient.ignored, ["colour"]);
    assert!(lenient.canonical_query().is_empty());
    assert!(parse_directory_search(t, &params(&[("colour", "red")]), Handling::Strict).is_err());
    assert!(
        parse_directory_search(t, &params(&[("type:missing", "true")]), Handling::Lenient).is_err()
    );
}

#[test]
fn near_takes_distance_and_unit_and_matches_within_it() {
    let loc = json!({"resourceType": "Location", "position": {"latitude": 39.9612, "longitude": -82.9988}});
    let t = ResourceType::Location;
    assert!(matches(t, &loc, &[("near", "39.98|-83.00|5|km")]));
    assert!(!matches(t, &loc, &[("near", "41.4993|-81.6944|100|mi")]));
    assert!(matches(t, &loc, &[("near", "41.4993|-81.6944|130|mi")]));
    for bad in ["x|y", "39|-83|5|furlongs", "39|-83|1000|km", "91|0"] {
        assert!(
            parse_directory_search(t, &params(&[("near", bad)]), Handling::Lenient).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn includes_and_revincludes_are_checked_against_the_tables() {
    let t = ResourceType::PractitionerRole;
    let s = parse_directory_search(
        t,
        &params(&[
            ("_include", "PractitionerRole:practitioner"),
            ("_include:iterate", "Location:organization"),
        ]),
        Handling::Strict,
    )
    .expect("parses");
    assert_eq!(s.includes.len(), 1);
    assert_eq!(s.iterate_includes.len(), 1);
    let r = parse_directory_search(
        ResourceType::Practitioner,
        &params(&[("_revinclude", "PractitionerRole:practitioner")]),
        Handling::Strict,
    )
    .expect("parses");
    assert_eq!(r.revincludes.len(), 1);
    assert!(
        parse_directory_search(
            t,
            &params(&[("_revinclude", "Location:organization")]),
            Handling::Strict
        )
        .is_err()
    );
}

#[test]
fn the_index_holds_one_lookup_term_per_value_and_the_geohash() {
    let loc = json!({"resourceType": "Location", "name": "Main", "address": {"city": "Columbus", "state": "OH", "postalCode": "43215"},
        "position": {"latitude": 39.9612, "longitude": -82.9988}, "managingOrganization": {"reference": "Organization/o1"}});
    let index = index_directory_resource(ResourceType::Location, &loc);
    let has = |p: &str, t: &str| index.lookup_terms.iter().any(|(a, b)| a == p && b == t);
    assert!(has("address-city", "columbus"));
    assert!(has("address-postalcode", "43215"));
    assert!(has("organization", "Organization/o1"));
    assert!(index.lookup_terms.iter().any(|(p, t)| p == "near"
        && t.len() > 9
        && t.starts_with(&crate::geo::encode(39.9612, -82.9988, 9))));
    assert!(
        index
            .lookup_terms
            .iter()
            .filter(|(p, _)| p == "near")
            .all(|(_, t)| crate::geo::term_position(t) == Some([39.9612, -82.9988])),
        "the near term carries the exact position"
    );
    assert!(index.position.is_some());
}
