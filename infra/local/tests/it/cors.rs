//! Browser apps: the local server answers CORS as the HTTP API's `CorsConfiguration`
//! in template.yaml does, so a public SMART client in a browser can reach `/token`
//! and the FHIR API from its own origin.

use reqwest::{Method, StatusCode};

use crate::support::{harness, send};

const APP_ORIGIN: &str = "https://app.example.org";

#[test]
fn a_preflight_for_the_token_endpoint_allows_any_origin_and_the_headers_apps_send() {
    let _h = harness();
    let reply = send(
        Method::OPTIONS,
        "/token",
        None,
        None,
        &[
            ("origin", APP_ORIGIN),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
    let methods = reply.headers["access-control-allow-methods"]
        .to_str()
        .unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = reply.headers["access-control-allow-headers"]
        .to_str()
        .unwrap_or_default();
    assert!(allowed.contains("content-type"), "{allowed}");
    assert!(allowed.contains("authorization"), "{allowed}");
}

#[test]
fn a_fhir_read_from_a_browser_origin_carries_the_allow_origin_header() {
    let h = harness();
    let token = h.token(h.member(0), "patient/*.rs");
    let reply = send(
        Method::GET,
        &format!("/Patient/{}", h.member(0)),
        Some(&token),
        None,
        &[("origin", APP_ORIGIN)],
    );
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["access-control-allow-origin"], "*");
}

#[test]
fn cors_grants_no_access_a_read_without_a_token_is_still_401() {
    let h = harness();
    let reply = send(
        Method::GET,
        &format!("/Patient/{}", h.member(0)),
        None,
        None,
        &[("origin", APP_ORIGIN)],
    );
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
