//! What every Lambda function in `functions/` needs, and nothing else: reading the
//! environment with one error type ([`ConfigError`]), JSON logs ([`init_tracing`]),
//! API Gateway (HTTP API, payload 2.0) events as plain `http` types ([`from_lambda`],
//! [`to_lambda`], [`BaseUrl`]), the check that a request came through the CloudFront
//! edge ([`edge`]), and the runtime loop ([`serve_http`], [`serve_events`]).
//!
//! It knows no FHIR, store or AWS SDK: the wiring of each family of functions lives in
//! its own function crate (`functions/*-fn`), so that every function's `main` reads
//! the same three steps:
//!
//! ```text
//! lambda_adapter::init_tracing();
//! let function = SomeFunction::from_env().await?;          // the cold start, once
//! lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await   // or serve_events
//! ```

mod convert;
pub mod edge;
mod env;

pub use convert::{BaseUrl, from_lambda, to_lambda};
pub use edge::{
    EdgeGuard, NotThroughEdge, ORIGIN_VERIFY_SECRET_VAR, PublicHost, ViewerAddress, client_address,
};
pub use env::{ConfigError, optional, parsed, required};
/// What a function's `main` returns when it cannot start or the runtime fails.
pub use lambda_runtime::Error;

use std::fmt::Debug;
use std::future::Future;

use lambda_http::{Body, Request, Response};
use lambda_runtime::{Diagnostic, LambdaEvent};
use secrets::SecretSource;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON logs, one object a line, filtered by `RUST_LOG` (default `info`): CloudWatch
/// Logs Insights reads the fields. No timestamp (CloudWatch stamps every line) and no
/// span (the runtime's request span carries the request id).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time()
        .init();
}

/// Serves API Gateway requests. The handler answers every request, errors included
/// (as the response it wants the client to see), so the invocation itself never fails.
/// Every answer goes through [`answer`]: the edge check, CORS and the security headers
/// are done here, once for every function. `edge_secret` is the origin-verify secret
/// when CloudFront is in front ([`edge`]), `None` otherwise.
pub async fn serve_http<S, H, F>(edge_secret: Option<S>, handler: H) -> Result<(), Error>
where
    S: SecretSource,
    H: Fn(Request) -> F + Sync,
    F: Future<Output = Response<Body>> + Send,
{
    let edge = EdgeGuard::load(edge_secret).await?;
    let (edge, handler) = (&edge, &handler);
    lambda_http::run(lambda_http::service_fn(
        move |request: Request| async move { Ok::<_, Error>(answer(edge, handler, request).await) },
    ))
    .await
}

/// One request through the edge check ([`EdgeGuard`]) and the stack's header policy
/// (`http_policy`): a request that skipped the edge is refused, a CORS preflight is
/// answered here (API Gateway has no `CorsConfiguration`, which would override the
/// functions' CORS headers with one rule for every route), any other request by
/// `handler`, and the answer gets the policy's CORS and security headers, with HSTS
/// (API Gateway serves HTTPS only).
pub async fn answer<S, H, F>(edge: &EdgeGuard<S>, handler: &H, request: Request) -> Response<Body>
where
    S: SecretSource,
    H: Fn(Request) -> F,
    F: Future<Output = Response<Body>> + Send,
{
    const TRANSPORT: http_policy::Transport = http_policy::Transport::Https;
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let admitted = edge.admit(&mut parts.headers, &mut parts.extensions).await;
    let preflight = http_policy::preflight(&parts.method, &path, &parts.headers, TRANSPORT);
    let mut response = match (admitted, preflight) {
        (Err(refused), _) => not_through_edge(refused),
        (Ok(()), Some(preflight)) => preflight,
        (Ok(()), None) => handler(Request::from_parts(parts, body)).await,
    };
    http_policy::secure(&path, TRANSPORT, &mut response);
    response
}

/// 403 with an OperationOutcome (static: this crate knows no FHIR types).
fn not_through_edge(refused: NotThroughEdge) -> Response<Body> {
    tracing::warn!(event = "edge.refused", reason = %refused);
    let body = format!(
        r#"{{"resourceType":"OperationOutcome","issue":[{{"severity":"error","code":"forbidden","diagnostics":"{refused}: use the API's published base URL."}}]}}"#
    );
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = http::StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/fhir+json"),
    );
    response
}

/// Serves events of type `E` (S3 notifications, Cognito triggers). A handler error fails
/// the invocation with the error's [`Diagnostic`], which is what Lambda retries on or
/// the caller (Cognito) reports.
pub async fn serve_events<E, R, X, H, F>(handler: H) -> Result<(), Error>
where
    E: DeserializeOwned,
    R: Serialize,
    X: Into<Diagnostic> + Debug,
    H: Fn(E) -> F,
    F: Future<Output = Result<R, X>>,
{
    lambda_runtime::run(lambda_runtime::service_fn(|event: LambdaEvent<E>| {
        handler(event.payload)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    const EVIL: &str = "https://evil.example";

    fn request(method: http::Method, path: &str) -> Request {
        http::Request::builder()
            .method(method)
            .uri(format!(
                "https://abc123xyz.execute-api.us-east-1.amazonaws.com{path}"
            ))
            .header(header::ORIGIN, EVIL)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::Empty)
            .unwrap_or_default()
    }

    /// The origin-verify secret of these tests.
    struct OneSecret;

    impl SecretSource for OneSecret {
        async fn key_ring(&self) -> Result<secrets::KeyRing, secrets::SourceError> {
            Ok(secrets::KeyRing::single(secrets::KeyMaterial::new(
                b"edge-secret".to_vec(),
            )))
        }
    }

    fn no_edge() -> EdgeGuard<OneSecret> {
        EdgeGuard::off()
    }

    #[tokio::test]
    async fn behind_the_edge_a_request_without_its_secret_never_reaches_the_handler() {
        let edge = EdgeGuard::load(Some(OneSecret)).await.unwrap();
        let response = answer(
            &edge,
            &never_called,
            request(http::Method::GET, "/Patient/1"),
        )
        .await;
        assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
        assert!(
            response
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
        let Body::Text(body) = response.body() else {
            panic!("an OperationOutcome")
        };
        let outcome: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(outcome["issue"][0]["code"], "forbidden");
    }

    #[tokio::test]
    async fn behind_the_edge_its_requests_are_answered_by_the_handler() {
        let edge = EdgeGuard::load(Some(OneSecret)).await.unwrap();
        let mut through_edge = request(http::Method::GET, "/Patient/1");
        let headers = through_edge.headers_mut();
        headers.insert(edge::ORIGIN_VERIFY_HEADER, "edge-secret".parse().unwrap());
        headers.insert(
            edge::FORWARDED_HOST_HEADER,
            "fhir.plan.example".parse().unwrap(),
        );
        let response = answer(&edge, &json, through_edge).await;
        assert_eq!(response.status(), http::StatusCode::OK);
    }

    async fn never_called(_: Request) -> Response<Body> {
        panic!("a preflight is answered before the handler")
    }

    async fn json(_: Request) -> Response<Body> {
        let mut response = Response::new(Body::Text("{}".into()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/fhir+json"),
        );
        response
    }

    #[tokio::test]
    async fn a_preflight_for_a_member_page_is_refused_before_the_handler() {
        let response = answer(
            &no_edge(),
            &never_called,
            request(http::Method::OPTIONS, "/connected-apps"),
        )
        .await;
        assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
        assert!(
            !response
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert!(
            response
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
    }

    #[tokio::test]
    async fn a_fhir_answer_on_lambda_is_readable_by_any_origin_and_carries_hsts() {
        let response = answer(&no_edge(), &json, request(http::Method::GET, "/Patient/1")).await;
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}
