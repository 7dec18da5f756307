//! The one way tests reach AWS: a local endpoint (moto, started by `scripts/with-moto`),
//! never a real account.
//!
//! `AWS_ENDPOINT_URL` names the endpoint. Without it a test FAILS, so CI never skips AWS
//! tests silently, unless `SKIP_AWS_TESTS=1` says to skip them on purpose.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// An SDK configuration for the local endpoint: explicit region (`AWS_REGION`, else
/// us-east-1), static test credentials and the endpoint, so the SDK never looks at IMDS
/// or `~/.aws`. `None` when `SKIP_AWS_TESTS=1`; the caller returns early.
///
/// # Panics
/// When `AWS_ENDPOINT_URL` is unset and the skip was not asked for.
pub async fn local_sdk_config() -> Option<SdkConfig> {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ if std::env::var("SKIP_AWS_TESTS").as_deref() == Ok("1") => {
            eprintln!("SKIP_AWS_TESTS=1: skipping a test that needs AWS");
            return None;
        }
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: run AWS tests through `scripts/with-moto cargo test …`, \
             or set SKIP_AWS_TESTS=1 to skip them deliberately"
        ),
    };
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let credentials = aws_credential_types::Credentials::new("test", "test", None, None, "static");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await;
    Some(config)
}

/// A CloudWatch Logs subscription delivery, exactly as Lambda receives it:
/// `awslogs.data` is the base64 of the gzipped batch. `events` are
/// `(event id, unix ms, message)`.
///
/// # Panics
/// Never on these inputs (gzip into memory, JSON of plain values).
pub fn logs_delivery(
    log_group: &str,
    events: &[(&str, i64, String)],
) -> aws_lambda_events::event::cloudwatch_logs::LogsEvent {
    use base64::Engine;
    use std::io::Write;
    let data = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": "2026/12/07/[$LATEST]abc",
        "subscriptionFilters": ["test-subscription"],
        "logEvents": events.iter().map(|(id, timestamp, message)| serde_json::json!({
            "id": id, "timestamp": timestamp, "message": message
        })).collect::<Vec<serde_json::Value>>(),
    });
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(data.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let packed = gzip.finish().unwrap_or_else(|e| panic!("{e}"));
    let event = serde_json::json!({
        "awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(packed)}
    });
    // From text, as the runtime decodes it.
    serde_json::from_str(&event.to_string()).unwrap_or_else(|e| panic!("decode the delivery: {e}"))
}
