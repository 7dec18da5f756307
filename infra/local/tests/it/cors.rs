//! Browser apps and other origins: the local server applies the same header policy as
//! every Lambda function (`http_policy`), so a public SMART client in a browser can
//! reach `/token` and the FHIR API from its own origin, anyone can read the public
//! directory, and a page of another origin reads nothing that needs a token or a
//! member session (issue #14, finding 7).

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use crate::support::{Server, harness, send};

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
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
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

const EVIL: &str = "https://evil.example";

/// What a page of another origin gets back: status and headers (the browser would show
/// the page nothing more unless the headers allow it).
async fn from_evil(
    server: &Server,
    method: Method,
    path: &str,
    preflight: bool,
) -> (StatusCode, HeaderMap) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));
    let mut request = client
        .request(method.clone(), format!("{}{path}", server.base))
        .header("origin", EVIL);
    if preflight {
        request = request
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            );
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (response.status(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn no_cors(what: &str, headers: &HeaderMap) {
    let cors: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: {cors:?}");
}

fn security_headers(what: &str, headers: &HeaderMap, member_data: bool) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");
    assert!(!header(headers, "referrer-policy").is_empty(), "{what}");
    assert!(
        header(headers, "content-security-policy").contains("frame-ancestors 'none'"),
        "{what}: {headers:?}"
    );
    // Plain http: no HSTS (browsers ignore it over http; Lambda sends it, see
    // lambda_adapter's tests).
    assert!(!headers.contains_key("strict-transport-security"), "{what}");
    assert!(
        !headers.contains_key("access-control-allow-credentials"),
        "{what}"
    );
    if member_data {
        assert_eq!(header(headers, "cache-control"), "no-store", "{what}");
    }
}

#[tokio::test]
async fn another_origin_reads_nothing_behind_a_token_or_a_session_and_every_endpoint_carries_the_security_headers()
 {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(dir.path()).await;

    // Member pages (the session cookie's): no preflight passes, no answer is readable.
    for path in [
        "/connected-apps",
        "/authorize",
        "/authorize/signin",
        "/authorize?response_type=code&client_id=x",
    ] {
        let (status, headers) = from_evil(&server, Method::OPTIONS, path, true).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "preflight {path}");
        no_cors(&format!("preflight {path}"), &headers);
        let (_, headers) = from_evil(&server, Method::GET, path, false).await;
        no_cors(&format!("GET {path}"), &headers);
        security_headers(&format!("GET {path}"), &headers, true);
    }

    // Token APIs: `*` without credentials (public SMART clients run on any origin), so
    // the page reads only what needs no token: the 401 and its OperationOutcome.
    for path in [
        "/Patient/patient-999996666-DH000154930",
        "/ExplanationOfBenefit?patient=x",
        "/Group/npi-1234567893/$export",
        "/bulk-status/job",
        "/bulk-files/job/Patient-0-0.ndjson",
    ] {
        let (status, headers) = from_evil(&server, Method::OPTIONS, path, true).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "preflight {path}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            "*",
            "{path}"
        );
        assert!(
            !headers.contains_key("access-control-allow-credentials"),
            "{path}"
        );
        let (status, headers) = from_evil(&server, Method::GET, path, false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path}");
        security_headers(&format!("GET {path}"), &headers, true);
    }
    let (status, headers) = from_evil(&server, Method::POST, "/token", false).await;
    assert!(status.is_client_error(), "POST /token: {status}");
    security_headers("POST /token", &headers, true);

    // The public directory and discovery: readable from anywhere, without credentials.
    for path in [
        "/directory/metadata",
        "/directory/Practitioner?_count=1",
        "/.well-known/smart-configuration",
        "/metadata",
    ] {
        let (status, headers) = from_evil(&server, Method::GET, path, false).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            "*",
            "{path}"
        );
        security_headers(&format!("GET {path}"), &headers, false);
    }

    // Public pages: for people, not scripts; never framed.
    for path in ["/members", "/developers", "/apps", "/directory/find"] {
        let (status, headers) = from_evil(&server, Method::GET, path, false).await;
        assert_eq!(status, StatusCode::OK, "GET {path}");
        no_cors(&format!("GET {path}"), &headers);
        security_headers(&format!("GET {path}"), &headers, false);
    }
    server.stop();
}
