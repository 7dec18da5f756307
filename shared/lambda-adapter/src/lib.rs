//! What every Lambda function in `functions/` needs, and nothing else: reading the
//! environment with one error type ([`ConfigError`]), JSON logs ([`init_tracing`]),
//! API Gateway (HTTP API, payload 2.0) events as plain `http` types ([`from_lambda`],
//! [`to_lambda`], [`BaseUrl`]), and the runtime loop ([`serve_http`], [`serve_events`]).
//!
//! It knows no FHIR, store or AWS SDK: the wiring of each family of functions lives in
//! its own function crate (`functions/*-fn`), so that every function's `main` reads
//! the same three steps:
//!
//! ```text
//! lambda_adapter::init_tracing();
//! let function = SomeFunction::from_env().await?;          // the cold start, once
//! lambda_adapter::serve_http(|request| function.handle(request)).await   // or serve_events
//! ```

mod convert;
mod env;

pub use convert::{BaseUrl, from_lambda, to_lambda};
pub use env::{ConfigError, optional, parsed, required};
/// What a function's `main` returns when it cannot start or the runtime fails.
pub use lambda_runtime::Error;

use std::fmt::Debug;
use std::future::Future;

use lambda_http::{Body, Request, Response};
use lambda_runtime::{Diagnostic, LambdaEvent};
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
/// Every answer goes through [`answer`]: CORS and the security headers are set here,
/// once for every function.
pub async fn serve_http<H, F>(handler: H) -> Result<(), Error>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(lambda_http::service_fn(|request: Request| {
        let response = answer(&handler, request);
        async move { Ok::<_, Error>(response.await) }
    }))
    .await
}

/// One request through the stack's header policy (`http_policy`): a CORS preflight is
/// answered here (API Gateway has no `CorsConfiguration`, which would override the
/// functions' CORS headers with one rule for every route), any other request by
/// `handler`, and the answer gets the policy's CORS and security headers, with HSTS
/// (API Gateway serves HTTPS only).
pub fn answer<H, F>(
    handler: &H,
    request: Request,
) -> impl Future<Output = Response<Body>> + use<H, F>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response<Body>> + Send,
{
    const TRANSPORT: http_policy::Transport = http_policy::Transport::Https;
    let path = request.uri().path().to_owned();
    let pending =
        match http_policy::preflight(request.method(), &path, request.headers(), TRANSPORT) {
            Some(preflight) => Pending::Ready(preflight),
            None => Pending::Handler(handler(request)),
        };
    async move {
        let mut response = match pending {
            Pending::Ready(response) => response,
            Pending::Handler(future) => future.await,
        };
        http_policy::secure(&path, TRANSPORT, &mut response);
        response
    }
}

enum Pending<F> {
    Ready(Response<Body>),
    Handler(F),
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
        let response = answer(&json, request(http::Method::GET, "/Patient/1")).await;
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }
}
