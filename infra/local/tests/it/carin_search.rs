//! The CARIN Blue Button server CapabilityStatement, parameter by parameter, through
//! the real local HTTP server (cms-carin-smart-requirements.md §(d) 21–38).

use fhir::ResourceType;
use reqwest::StatusCode;

use crate::support::{all_pages, entry_ids, get, harness, post_form, self_link};

const ALL: &str = "patient/*.rs";

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[test]
fn metadata_instantiates_carin_and_lists_every_search_parameter() {
    let reply = get("/metadata", None);
    assert_eq!(reply.status, StatusCode::OK);
    let cs = &reply.json;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(
        cs["instantiates"][0],
        "http://hl7.org/fhir/us/carin-bb/CapabilityStatement/c4bb"
    );
    let operations: Vec<&str> = cs["rest"][0]["operation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for operation in [
        "member-match",
        "everything",
        "bulk-member-match",
        "davinci-data-export",
    ] {
        assert!(
            operations.contains(&operation),
            "{operation} in {operations:?}"
        );
    }
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), 8, "CARIN's six, Consent and Provenance");
    let provenance = resources
        .iter()
        .find(|r| r["type"] == "Provenance")
        .unwrap();
    assert_eq!(
        provenance["supportedProfile"][0]
            .as_str()
            .or(provenance["profile"].as_str()),
        Some("http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance")
    );
    let eob = resources
        .iter()
        .find(|r| r["type"] == "ExplanationOfBenefit")
        .unwrap();
    let names: Vec<&str> = eob["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for required in [
        "_id",
        "patient",
        "_lastUpdated",
        "type",
        "identifier",
        "service-date",
        "service-start-date",
        "billable-period-start",
    ] {
        assert!(
            names.contains(&required),
            "EOB searchParam {required} missing from {names:?}"
        );
    }
    let includes = eob["searchInclude"].as_array().unwrap();
    for include in [
        "patient",
        "provider",
        "care-team",
        "coverage",
        "insurer",
        "payee",
        "*",
    ] {
        assert!(
            includes
                .iter()
                .any(|i| i == &format!("ExplanationOfBenefit:{include}")),
            "{include}"
        );
    }
    let security = &cs["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
}

#[test]
fn eob_patient_search_accepts_both_reference_forms_and_post() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let plain = get(
        &format!("/ExplanationOfBenefit?patient={a}&_count=100"),
        Some(&token),
    );
    let typed = get(
        &format!("/ExplanationOfBenefit?patient=Patient/{a}&_count=100"),
        Some(&token),
    );
    let posted = post_form(
        "/ExplanationOfBenefit/_search",
        Some(&token),
        &format!("patient={a}&_count=100"),
    );
    assert_eq!(plain.status, StatusCode::OK);
    let expected = sorted(
        h.owned(ResourceType::ExplanationOfBenefit, a)
            .into_iter()
            .map(|id| format!("ExplanationOfBenefit/{id}"))
            .collect(),
    );
    assert!(!expected.is_empty());
    assert_eq!(sorted(entry_ids(&plain.json, "match")), expected);
    assert_eq!(sorted(entry_ids(&typed.json, "match")), expected);
    assert_eq!(sorted(entry_ids(&posted.json, "match")), expected);
}

#[test]
fn paging_returns_every_match_exactly_once() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let ids = all_pages(
        &format!("/ExplanationOfBenefit?patient={a}&_count=7"),
        &token,
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an entry appeared twice across pages"
    );
    assert_eq!(
        ids.len(),
        h.owned(ResourceType::ExplanationOfBenefit, a).len()
    );
}

#[test]
fn count_above_the_maximum_is_clamped_and_the_self_link_says_so() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let reply = get("/ExplanationOfBenefit?_count=100000", Some(&token));
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        self_link(&reply.json).contains("_count=100"),
        "{}",
        self_link(&reply.json)
    );
}

#[test]
fn type_search_without_patient_is_scoped_to_the_tokens_member() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let reply = get(
        "/ExplanationOfBenefit?type=professional&_count=100",
        Some(&token),
    );
    assert_eq!(reply.status, StatusCode::OK);
    let found = entry_ids(&reply.json, "match");
    assert!(!found.is_empty());
    let own = h.owned(ResourceType::ExplanationOfBenefit, a);
    for id in &found {
        assert!(
            own.iter()
                .any(|o| format!("ExplanationOfBenefit/{o}") == *id),
            "{id} is not member A's"
        );
    }
    for entry in reply.json["entry"].as_array().unwrap() {
        assert_eq!(
            entry["resource"]["type"]["coding"][0]["code"],
            "professional"
        );
    }
}

#[test]
fn type_accepts_system_and_code() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let plain = get(
        "/ExplanationOfBenefit?type=pharmacy&_count=100",
        Some(&token),
    );
    let system = get(
        "/ExplanationOfBenefit?type=http://terminology.hl7.org/CodeSystem/claim-type|pharmacy&_count=100",
        Some(&token),
    );
    assert_eq!(
        entry_ids(&plain.json, "match"),
        entry_ids(&system.json, "match")
    );
    assert!(!entry_ids(&plain.json, "match").is_empty());
}

#[test]
fn identifier_search_by_value_finds_the_claim() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let eob = get(
        &format!(
            "/ExplanationOfBenefit/{}",
            h.owned(ResourceType::ExplanationOfBenefit, a)[0]
        ),
        Some(&token),
    );
    let value = eob.json["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = get(
        &format!("/ExplanationOfBenefit?identifier={value}"),
        Some(&token),
    );
    assert_eq!(
        entry_ids(&reply.json, "match"),
        vec![format!(
            "ExplanationOfBenefit/{}",
            eob.json["id"].as_str().unwrap()
        )]
    );
}

#[test]
fn service_date_gt_with_a_timezone_offset_sent_unencoded() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    // Inferno sends `+00:00` unencoded: it arrives as a space.
    let reply = get(
        "/ExplanationOfBenefit?service-date=gt2019-11-01T00:00:00+00:00&_count=100",
        Some(&token),
    );
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert!(!entry_ids(&reply.json, "match").is_empty());
}

#[test]
fn date_parameters_narrow_results() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let all = entry_ids(
        &get("/ExplanationOfBenefit?_count=100", Some(&token)).json,
        "match",
    );
    let early = entry_ids(
        &get(
            "/ExplanationOfBenefit?billable-period-start=lt2022&_count=100",
            Some(&token),
        )
        .json,
        "match",
    );
    let late = entry_ids(
        &get(
            "/ExplanationOfBenefit?billable-period-start=ge2022&_count=100",
            Some(&token),
        )
        .json,
        "match",
    );
    assert_eq!(early.len() + late.len(), all.len());
    let start = entry_ids(&get("/ExplanationOfBenefit?service-start-date=ge2019-01-01&service-start-date=lt2100-01-01&_count=100", Some(&token)).json, "match");
    assert_eq!(start.len(), all.len());
    let none = get("/ExplanationOfBenefit?service-date=lt1900", Some(&token));
    assert!(entry_ids(&none.json, "match").is_empty());
}

#[test]
fn last_updated_equality_matches_the_instant_itself() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let eob = get(
        &format!(
            "/ExplanationOfBenefit/{}",
            h.owned(ResourceType::ExplanationOfBenefit, a)[0]
        ),
        Some(&token),
    );
    let instant = eob.json["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let reply = get(
        &format!(
            "/ExplanationOfBenefit?_lastUpdated={}&_count=100",
            instant.replace('+', "%2B")
        ),
        Some(&token),
    );
    assert!(entry_ids(&reply.json, "match").contains(&format!(
        "ExplanationOfBenefit/{}",
        eob.json["id"].as_str().unwrap()
    )));
    let later = get(
        &format!("/ExplanationOfBenefit?_lastUpdated=gt{instant}&_count=100"),
        Some(&token),
    );
    assert!(!entry_ids(&later.json, "match").contains(&format!(
        "ExplanationOfBenefit/{}",
        eob.json["id"].as_str().unwrap()
    )));
}

#[test]
fn every_eob_include_returns_the_referenced_resources() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let eob_id = &h.owned(ResourceType::ExplanationOfBenefit, a)[0];
    for (include, expected_type) in [
        ("patient", "Patient"),
        ("coverage", "Coverage"),
        ("insurer", "Organization"),
        ("provider", ""),
        ("care-team", ""),
        ("payee", ""),
    ] {
        let reply = get(
            &format!("/ExplanationOfBenefit?_id={eob_id}&_include=ExplanationOfBenefit:{include}"),
            Some(&token),
        );
        assert_eq!(reply.status, StatusCode::OK);
        let included = entry_ids(&reply.json, "include");
        assert!(
            !included.is_empty(),
            "_include=ExplanationOfBenefit:{include} returned nothing"
        );
        if !expected_type.is_empty() {
            assert!(
                included.iter().all(|i| i.starts_with(expected_type)),
                "{include}: {included:?}"
            );
        }
    }
}

#[test]
fn include_star_returns_only_what_the_eob_references() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let eob_id = &h.owned(ResourceType::ExplanationOfBenefit, a)[0];
    let reply = get(
        &format!("/ExplanationOfBenefit?_id={eob_id}&_include=ExplanationOfBenefit:*"),
        Some(&token),
    );
    let entries = reply.json["entry"].as_array().unwrap();
    let eob = entries
        .iter()
        .find(|e| e["search"]["mode"] == "match")
        .unwrap()["resource"]
        .to_string();
    let included = entry_ids(&reply.json, "include");
    assert!(included.len() >= 4, "{included:?}");
    for reference in included {
        assert!(
            eob.contains(&format!("\"{reference}\"")),
            "{reference} is not referenced by the EOB"
        );
    }
}

#[test]
fn coverage_include_iterate_reaches_the_payor() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let reply = get(
        &format!(
            "/ExplanationOfBenefit?patient={a}&_count=3&_include=ExplanationOfBenefit:coverage&_include:iterate=Coverage:payor"
        ),
        Some(&token),
    );
    let included = entry_ids(&reply.json, "include");
    assert!(
        included.iter().any(|i| i.starts_with("Coverage/")),
        "{included:?}"
    );
    assert!(
        included.iter().any(|i| i.starts_with("Organization/")),
        "{included:?}"
    );
    let coverage = get(
        &format!("/Coverage?patient={a}&_include=Coverage:payor"),
        Some(&token),
    );
    assert!(
        entry_ids(&coverage.json, "include")
            .iter()
            .any(|i| i.starts_with("Organization/"))
    );
}

#[test]
fn included_resources_are_identical_to_direct_reads() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let reply = get(
        &format!("/Coverage?patient={a}&_include=Coverage:payor"),
        Some(&token),
    );
    for entry in reply.json["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        let path = format!(
            "/{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        assert_eq!(&get(&path, Some(&token)).json, resource, "{path}");
    }
}

#[test]
fn patient_searches_of_us_core() {
    let h = harness();
    let member = &h.members[0];
    let token = h.token(&member.patient_id, ALL);
    let me = format!("Patient/{}", member.patient_id);
    let family_prefix: String = member
        .family
        .chars()
        .take(3)
        .collect::<String>()
        .to_lowercase();
    for query in [
        format!("_id={}", member.patient_id),
        format!("identifier={}", member.member_id),
        format!("name={family_prefix}"),
        format!("family={}", member.family),
        format!("given={}", member.given),
        format!("birthdate={}", member.birth_date),
        format!("birthdate={}&name={}", member.birth_date, member.family),
        format!("name={}&gender=female,male,other,unknown", member.family),
        format!("family:exact={}", member.family),
    ] {
        let reply = get(&format!("/Patient?{query}"), Some(&token));
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.json);
        assert_eq!(
            entry_ids(&reply.json, "match"),
            vec![me.clone()],
            "Patient?{query}"
        );
    }
    let wrong = get("/Patient?family:exact=NOBODY", Some(&token));
    assert!(entry_ids(&wrong.json, "match").is_empty());
}

#[test]
fn directory_searches_by_name_identifier_and_address() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let practitioners = h.directory(ResourceType::Practitioner);
    let practitioner = practitioners.first().unwrap();
    let family = practitioner.1["name"][0]["family"].as_str().unwrap();
    let npi = practitioner.1["identifier"][0]["value"].as_str().unwrap();
    let by_name = get(
        &format!("/Practitioner?name={}", &family[..3]),
        Some(&token),
    );
    assert!(
        entry_ids(&by_name.json, "match").contains(&format!("Practitioner/{}", practitioner.0))
    );
    let by_npi = get(&format!("/Practitioner?identifier={npi}"), Some(&token));
    assert_eq!(
        entry_ids(&by_npi.json, "match"),
        vec![format!("Practitioner/{}", practitioner.0)]
    );
    let organizations = h.directory(ResourceType::Organization);
    let organization = organizations
        .iter()
        .find(|(_, r)| r.get("address").is_some())
        .unwrap();
    let city = organization.1["address"][0]["city"].as_str().unwrap();
    let by_city = get(&format!("/Organization?address={city}"), Some(&token));
    assert!(
        entry_ids(&by_city.json, "match").contains(&format!("Organization/{}", organization.0))
    );
    let all = get("/Organization?_count=100", Some(&token));
    assert!(entry_ids(&all.json, "match").len() >= 2);
}

#[test]
fn reads_and_vreads_carry_meta_and_profiles() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    for resource_type in [
        ResourceType::Patient,
        ResourceType::Coverage,
        ResourceType::ExplanationOfBenefit,
    ] {
        let id = &h.owned(resource_type, a)[0];
        let read = get(&format!("/{resource_type}/{id}"), Some(&token));
        assert_eq!(read.status, StatusCode::OK);
        // An EOB is written by its 837 and again by its 835: any version will do.
        let version: u64 = read.json["meta"]["versionId"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(version >= 1);
        assert!(read.json["meta"]["lastUpdated"].is_string());
        assert!(
            read.json["meta"]["profile"][0]
                .as_str()
                .unwrap()
                .contains("carin-bb")
        );
        assert_eq!(read.headers["etag"], format!("W/\"{version}\"").as_str());
        let vread = get(
            &format!("/{resource_type}/{id}/_history/{version}"),
            Some(&token),
        );
        assert_eq!(vread.json, read.json);
        for older in 1..version {
            let old = get(
                &format!("/{resource_type}/{id}/_history/{older}"),
                Some(&token),
            );
            assert_eq!(old.status, StatusCode::OK, "{resource_type}/{id} v{older}");
            assert_eq!(old.json["meta"]["versionId"], older.to_string());
        }
        assert_eq!(
            get(
                &format!("/{resource_type}/{id}/_history/{}", version + 1),
                Some(&token)
            )
            .status,
            StatusCode::NOT_FOUND
        );
    }
}

#[test]
fn unknown_parameters_are_ignored_and_left_out_of_the_self_link() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let reply = get("/ExplanationOfBenefit?foo=bar&type=oral", Some(&token));
    assert_eq!(reply.status, StatusCode::OK);
    let link = self_link(&reply.json);
    assert!(!link.contains("foo"), "{link}");
    assert!(link.contains("type=oral"), "{link}");
}

#[test]
fn every_read_event_names_a_resource_the_demo_holds() {
    // events/ (scripts/make-events.py) is what `sam local invoke` and `cargo lambda
    // invoke` send: its ids must be ones the local server's demo holds.
    let h = harness();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(raw_path) = event["rawPath"].as_str() else {
            continue;
        };
        let query = event["rawQueryString"].as_str().unwrap_or("");
        let read = name.ends_with("-read.json") || name.ends_with("-vread.json");
        let search = name.ends_with("-search.json") && query.contains("patient=");
        if !read && !search {
            continue;
        }
        let uri = if query.is_empty() {
            raw_path.to_owned()
        } else {
            format!("{raw_path}?{query}")
        };
        let found = (0..h.members.len()).any(|n| {
            let reply = get(&uri, Some(&h.token(h.member(n), ALL)));
            reply.status == StatusCode::OK && (read || !entry_ids(&reply.json, "match").is_empty())
        });
        assert!(found, "{name}: {uri} finds nothing in the demo");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} events checked");
}
