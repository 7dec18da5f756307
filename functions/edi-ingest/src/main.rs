//! Lambda function: S3 ObjectCreated events on `inbound/` → the X12 ingest pipeline.
//! The logic is in the library (`lib.rs`); this is wiring.
//!
//! Retries: the SDK clients use the standard retry mode with up to 8 attempts and
//! exponential backoff with jitter, which is what absorbs DynamoDB throttling
//! (ProvisionedThroughputExceeded, ThrottlingException, TransactionConflict is not
//! retried here but surfaces as a conflict that `update_with` retries) and S3 503
//! SlowDown. What outlasts those retries fails the invocation as Retryable.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use edi_ingest_function::{FunctionConfig, Handler};
use lambda_runtime::{LambdaEvent, service_fn};
use store_dynamodb::DynamoStore;

/// SDK attempts per call (the first plus retries) before an error surfaces.
const SDK_MAX_ATTEMPTS: u32 = 8;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let config = FunctionConfig::from_env()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .load()
        .await;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name,
    ));
    let handler = Handler::new(store, config.ingest, s3_objects::client_for(&sdk));
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        handler.handle(event.payload).await
    }))
    .await
}
