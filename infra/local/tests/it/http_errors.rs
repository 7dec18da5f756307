//! Bad input gets a clear OperationOutcome with the right status, never a 500.

use std::sync::Arc;

use fhir::ResourceType;
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use reqwest::{Method, StatusCode};

use crate::support::{Harness, Reply, get, harness, post_form, send};

const ALL: &str = "patient/*.rs";

fn assert_outcome(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["resourceType"], "OperationOutcome");
    assert_eq!(reply.json["issue"][0]["code"], code, "{}", reply.json);
}

#[test]
fn writes_are_405_with_allow() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    for (method, path) in [
        (Method::DELETE, "/Patient/x"),
        (Method::PUT, "/Patient/x"),
        (Method::POST, "/Patient"),
    ] {
        let reply = send(
            method,
            path,
            Some(&token),
            Some("{}".into()),
            &[("content-type", "application/fhir+json")],
        );
        assert_outcome(&reply, StatusCode::METHOD_NOT_ALLOWED, "not-supported");
        assert!(reply.headers.contains_key("allow"));
    }
}

#[test]
fn xml_only_is_406_and_format_json_wins() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let path = format!("/Patient/{}", h.member(0));
    let xml = send(
        Method::GET,
        &path,
        Some(&token),
        None,
        &[("accept", "application/fhir+xml")],
    );
    assert_outcome(&xml, StatusCode::NOT_ACCEPTABLE, "not-supported");
    let format = send(
        Method::GET,
        &format!("{path}?_format=json"),
        Some(&token),
        None,
        &[("accept", "application/fhir+xml")],
    );
    assert_eq!(format.status, StatusCode::OK);
    assert!(
        format.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let plain = send(
        Method::GET,
        &path,
        Some(&token),
        None,
        &[("accept", "application/json")],
    );
    assert!(
        plain.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

#[test]
fn bad_search_values_are_400() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    for query in [
        "service-date=notadate",
        "_count=abc",
        "_lastUpdated=xx2020",
        "type:nonsense=x",
        "name=%FF",
    ] {
        let reply = get(&format!("/ExplanationOfBenefit?{query}"), Some(&token));
        assert_outcome(&reply, StatusCode::BAD_REQUEST, "invalid");
    }
}

#[test]
fn strict_handling_rejects_unknown_parameters() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let reply = send(
        Method::GET,
        "/ExplanationOfBenefit?foo=bar",
        Some(&token),
        None,
        &[("prefer", "handling=strict")],
    );
    assert_outcome(&reply, StatusCode::BAD_REQUEST, "invalid");
}

#[test]
fn an_oversized_search_body_is_413() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let body = format!("name={}", "a".repeat(200_000));
    let reply = post_form("/Patient/_search", Some(&token), &body);
    assert_outcome(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too-costly");
}

#[test]
fn a_json_search_body_is_415() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    let reply = send(
        Method::POST,
        "/Patient/_search",
        Some(&token),
        Some("{}".into()),
        &[("content-type", "application/json")],
    );
    assert_outcome(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-supported");
}

#[test]
fn unknown_paths_and_ids_are_404() {
    let h = harness();
    let token = h.token(h.member(0), ALL);
    assert_outcome(
        &get("/Observation", Some(&token)),
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_outcome(
        &get("/Patient/not%20valid", Some(&token)),
        StatusCode::NOT_FOUND,
        "not-found",
    );
    assert_outcome(
        &get("/Patient/x/_history/abc", Some(&token)),
        StatusCode::NOT_FOUND,
        "not-found",
    );
}

#[test]
fn a_deleted_resource_is_410_and_its_old_version_stays_readable() {
    // Deleting changes the store, so this test has a server of its own.
    let h = Harness::start();
    let a = h.member(0);
    let token = h.token(a, ALL);
    let id = h
        .owned(ResourceType::ExplanationOfBenefit, a)
        .last()
        .cloned()
        .unwrap();
    let store = Arc::clone(&h.store);
    let current = h
        .runtime
        .block_on(store.get(ResourceType::ExplanationOfBenefit, &id))
        .unwrap()
        .unwrap();
    let resource: serde_json::Value = serde_json::from_str(&current.body).unwrap();
    h.runtime
        .block_on(store.put(ResourceWrite {
            resource_type: ResourceType::ExplanationOfBenefit,
            id: id.clone(),
            resource,
            index: current.index.clone(),
            deleted: true,
            condition: WriteCondition::VersionIs(current.version_id),
        }))
        .unwrap();
    assert_outcome(
        &h.get(&format!("/ExplanationOfBenefit/{id}"), Some(&token)),
        StatusCode::GONE,
        "deleted",
    );
    assert_eq!(
        h.get(
            &format!("/ExplanationOfBenefit/{id}/_history/1"),
            Some(&token)
        )
        .status,
        StatusCode::OK
    );
    let other = h.token(h.member(1), ALL);
    assert_eq!(
        h.get(&format!("/ExplanationOfBenefit/{id}"), Some(&other))
            .status,
        StatusCode::NOT_FOUND
    );
    let search = h.get(&format!("/ExplanationOfBenefit?_id={id}"), Some(&token));
    assert!(search.json.get("entry").is_none());
}

#[test]
fn an_app_over_its_request_budget_gets_429_with_retry_after_and_other_apps_do_not() {
    let server = Harness::start_with_budget(fhir_api::requests_per_minute(3));
    let member = server.member(0).to_owned();
    let path = format!("/Patient/{member}");
    let greedy = server.token_for_client(&member, "patient/*.rs", "greedy-app");
    // Budgets are per clock minute: start well inside one.
    while fhir::clock::unix_now() % 60 > 50 {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    for _ in 0..3 {
        assert_eq!(server.get(&path, Some(&greedy)).status, StatusCode::OK);
    }
    let refused = server.get(&path, Some(&greedy));
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = refused
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(refused.json["resourceType"], "OperationOutcome");
    assert_eq!(refused.json["issue"][0]["code"], "throttled");

    // Another app of the same member has its own budget.
    let other = server.token_for_client(&member, "patient/*.rs", "other-app");
    assert_eq!(server.get(&path, Some(&other)).status, StatusCode::OK);
    // A request without a valid token is refused before it can spend anyone's budget.
    assert_eq!(server.get(&path, None).status, StatusCode::UNAUTHORIZED);
}
