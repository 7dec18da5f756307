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
pub async fn serve_http<H, F>(handler: H) -> Result<(), Error>
where
    H: Fn(Request) -> F,
    F: Future<Output = Response<Body>> + Send,
{
    lambda_http::run(lambda_http::service_fn(|request: Request| {
        let response = handler(request);
        async move { Ok::<_, Error>(response.await) }
    }))
    .await
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
