//! Deny by default: a token for member A never returns member B's data, through any
//! route, parameter, include or cursor (member-auth.md §8.A and §8.E).

use fhir::ResourceType;
use reqwest::{Method, StatusCode};

use crate::support::{entry_ids, get, harness, next_link, post_form, send};

const ALL: &str = "patient/*.rs";

fn b_resources() -> Vec<(ResourceType, String)> {
    let h = harness();
    let b = h.member(1);
    [
        ResourceType::Patient,
        ResourceType::Coverage,
        ResourceType::ExplanationOfBenefit,
        ResourceType::RelatedPerson,
    ]
    .into_iter()
    .flat_map(|t| h.owned(t, b).into_iter().map(move |id| (t, id)))
    .collect()
}

#[test]
fn reading_another_members_resources_is_not_found_exactly_like_a_missing_one() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let missing = get("/ExplanationOfBenefit/does-not-exist", Some(&token));
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    for (resource_type, id) in b_resources() {
        for path in [
            format!("/{resource_type}/{id}"),
            format!("/{resource_type}/{id}/_history/1"),
        ] {
            let reply = get(&path, Some(&token));
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.json["issue"][0]["code"], "not-found");
            assert!(
                !reply.json.to_string().contains(&h.member(1).to_string())
                    || path.contains(h.member(1))
            );
        }
    }
}

#[test]
fn searching_by_another_members_id_finds_nothing() {
    let h = harness();
    let (a, b) = (h.member(0), h.member(1));
    let token = h.token(a, ALL);
    for query in [
        format!("/ExplanationOfBenefit?patient={b}"),
        format!("/ExplanationOfBenefit?patient=Patient/{b}"),
        format!("/Coverage?patient={b}"),
        format!("/RelatedPerson?patient={b}"),
        format!("/Patient?_id={b}"),
    ] {
        let reply = get(&query, Some(&token));
        assert_eq!(reply.status, StatusCode::OK, "{query}");
        assert!(
            entry_ids(&reply.json, "match").is_empty(),
            "{query} leaked {:?}",
            entry_ids(&reply.json, "match")
        );
    }
    let posted = post_form(
        "/ExplanationOfBenefit/_search",
        Some(&token),
        &format!("patient={b}"),
    );
    assert!(entry_ids(&posted.json, "match").is_empty());
}

#[test]
fn an_id_search_for_another_members_eob_with_include_star_returns_nothing() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let b_eob = &h.owned(ResourceType::ExplanationOfBenefit, h.member(1))[0];
    let reply = get(
        &format!("/ExplanationOfBenefit?_id={b_eob}&_include=ExplanationOfBenefit:*"),
        Some(&token),
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json.get("entry").is_none(), "{}", reply.json);
}

#[test]
fn searches_without_patient_never_cross_compartments() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let b_ids: Vec<String> = b_resources()
        .into_iter()
        .map(|(t, id)| format!("{t}/{id}"))
        .collect();
    for resource_type in [
        ResourceType::ExplanationOfBenefit,
        ResourceType::Coverage,
        ResourceType::Patient,
        ResourceType::RelatedPerson,
    ] {
        let reply = get(&format!("/{resource_type}?_count=100"), Some(&token));
        for id in entry_ids(&reply.json, "match")
            .iter()
            .chain(entry_ids(&reply.json, "include").iter())
        {
            assert!(!b_ids.contains(id), "{id} leaked to member A");
        }
    }
}

#[test]
fn a_cursor_is_bound_to_member_client_and_query_and_cannot_be_tampered_with() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let first = get("/ExplanationOfBenefit?_count=2", Some(&token));
    let next = next_link(&first.json).expect("a second page");
    assert_eq!(get(&next, Some(&token)).status, StatusCode::OK);

    let other_member = h.token(h.member(1), ALL);
    assert_eq!(
        get(&next, Some(&other_member)).status,
        StatusCode::BAD_REQUEST
    );
    let other_client = h.token_for_client(a, ALL, "another-app");
    assert_eq!(
        get(&next, Some(&other_client)).status,
        StatusCode::BAD_REQUEST
    );
    let other_query = next.replace("_count=2", "_count=2&type=oral");
    assert_eq!(
        get(&other_query, Some(&token)).status,
        StatusCode::BAD_REQUEST
    );

    let (head, cursor) = next.rsplit_once("_cursor=").unwrap();
    let mut bytes = cursor.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{head}_cursor={}", String::from_utf8(bytes).unwrap());
    let reply = get(&tampered, Some(&token));
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json["resourceType"], "OperationOutcome");
}

#[test]
fn a_scope_for_one_type_does_not_open_another() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, "patient/Patient.read");
    let reply = get("/ExplanationOfBenefit", Some(&token));
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json["issue"][0]["code"], "forbidden");
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(
        get(&format!("/Patient/{a}"), Some(&token)).status,
        StatusCode::OK
    );
}

#[test]
fn includes_leave_out_types_the_token_has_no_scope_for() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, "patient/ExplanationOfBenefit.rs");
    let reply = get(
        &format!("/ExplanationOfBenefit?patient={a}&_count=5&_include=ExplanationOfBenefit:*"),
        Some(&token),
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!entry_ids(&reply.json, "match").is_empty());
    assert!(
        entry_ids(&reply.json, "include").is_empty(),
        "{:?}",
        entry_ids(&reply.json, "include")
    );
}

#[test]
fn v2_read_without_search_allows_read_and_forbids_search() {
    let h = harness();
    let a = h.member(0);
    let token = h.token(a, "patient/Patient.r");
    assert_eq!(
        get(&format!("/Patient/{a}"), Some(&token)).status,
        StatusCode::OK
    );
    assert_eq!(get("/Patient", Some(&token)).status, StatusCode::FORBIDDEN);
}

#[test]
fn missing_or_invalid_tokens_are_401_with_www_authenticate() {
    let h = harness();
    let eob = format!(
        "/ExplanationOfBenefit/{}",
        h.owned(ResourceType::ExplanationOfBenefit, h.member(0))[0]
    );
    for token in [
        None,
        Some("not-a-jwt"),
        Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
    ] {
        let reply = get(&eob, token);
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(
            reply.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        assert_eq!(reply.json["resourceType"], "OperationOutcome");
    }
    let basic = send(
        Method::GET,
        &eob,
        None,
        None,
        &[("authorization", "Basic dXNlcjpwYXNz")],
    );
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn directory_resources_are_readable_with_their_scope_only() {
    let h = harness();
    let practitioners = h.directory(ResourceType::Practitioner);
    let practitioner = &practitioners.first().unwrap().0;
    let with_scope = h.token(h.member(0), "patient/Practitioner.read");
    assert_eq!(
        get(&format!("/Practitioner/{practitioner}"), Some(&with_scope)).status,
        StatusCode::OK
    );
    let without = h.token(h.member(0), "patient/ExplanationOfBenefit.read");
    assert_eq!(
        get(&format!("/Practitioner/{practitioner}"), Some(&without)).status,
        StatusCode::FORBIDDEN
    );
}
