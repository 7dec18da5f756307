//! The usage-metrics Lambda functions' logic, apart from their `main`s so that tests
//! drive it against moto with the real SDK.
//!
//! * **Aggregator** ([`aggregate`]): a CloudWatch Logs subscription filter on each FHIR
//!   function's log group sends it the `audit` lines of successful reads. It reduces
//!   each batch ([`usage_metrics::Batch`]) and writes the usage records through the
//!   key-value port on the table. Every write is idempotent (see
//!   [`usage_metrics::records`]), so a redelivered or retried batch counts nothing
//!   twice; a failed write fails the invocation, which Lambda retries and then hands
//!   to the dead-letter queue, so nothing is lost silently.
//! * **Report** ([`report`]): on 2 January (EventBridge) or on demand
//!   (`{"year": 2026}`), the counts for CMS, as `usage-reports/{year}/cms-usage-{year}.json`
//!   and `.csv` in the bucket.

use aws_lambda_events::event::cloudwatch_logs::LogsEvent;
use fhir_store::KeyValueStore;
use usage_metrics::{AccessEvent, Batch, PlanIdentifiers, UsageReport};

/// Where reports go in the bucket.
pub const REPORT_PREFIX: &str = "usage-reports/";

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error(transparent)]
    Usage(#[from] usage_metrics::UsageError),
    #[error("S3 PutObject {key}: {reason}")]
    Put { key: String, reason: String },
    #[error("the event names no usable year: {0}")]
    Year(String),
}

/// Records the accesses one subscription delivery carries; returns how many events
/// were accesses. CloudWatch's own test message (`CONTROL_MESSAGE`) records nothing.
pub async fn aggregate<K: KeyValueStore>(
    kv: &K,
    event: &LogsEvent,
) -> Result<usize, FunctionError> {
    let data = &event.aws_logs.data;
    if data.message_type != "DATA_MESSAGE" {
        return Ok(0);
    }
    let events: Vec<AccessEvent> = data
        .log_events
        .iter()
        .filter_map(|e| AccessEvent::from_json_line(&e.message, e.timestamp, &e.id))
        .collect();
    let batch = Batch::of(&events);
    if !batch.is_empty() {
        usage_metrics::records::record(kv, &batch).await?;
    }
    tracing::info!(
        lines = data.log_events.len(),
        accesses = events.len(),
        "usage recorded"
    );
    Ok(events.len())
}

/// The report function's settings: `REPORT_BUCKET` (required), `PLAN_NAME`,
/// `PAYER_ID`, `CMS_PLAN_IDS` (comma-separated).
#[derive(Debug, Clone)]
pub struct ReportConfig {
    pub bucket: String,
    pub plan: PlanIdentifiers,
}

impl ReportConfig {
    pub fn from_env() -> Result<ReportConfig, FunctionError> {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let bucket = var("REPORT_BUCKET");
        if bucket.is_empty() {
            return Err(FunctionError::Missing("REPORT_BUCKET"));
        }
        Ok(ReportConfig {
            bucket,
            plan: PlanIdentifiers {
                plan_name: var("PLAN_NAME"),
                payer_id: var("PAYER_ID"),
                plan_ids: var("CMS_PLAN_IDS")
                    .split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
        })
    }
}

/// The year a report invocation is for: `{"year": YYYY}` when given (on demand),
/// else the Eastern calendar year before `now_ms` (the January schedule).
pub fn report_year(payload: &serde_json::Value, now_ms: i64) -> Result<i32, FunctionError> {
    match payload.get("year") {
        Some(year) => year
            .as_i64()
            .and_then(|y| i32::try_from(y).ok())
            .ok_or_else(|| FunctionError::Year(year.to_string())),
        None => usage_metrics::Day::of_unix_millis(now_ms)
            .map(|today| today.year() - 1)
            .ok_or_else(|| FunctionError::Year(now_ms.to_string())),
    }
}

/// Builds the year's report and writes it as JSON and CSV; returns the two keys.
pub async fn report<K: KeyValueStore>(
    kv: &K,
    s3: &aws_sdk_s3::Client,
    config: &ReportConfig,
    year: i32,
) -> Result<(UsageReport, [String; 2]), FunctionError> {
    let report = UsageReport::build(kv, year, config.plan.clone()).await?;
    let base = format!("{REPORT_PREFIX}{year}/cms-usage-{year}");
    let json_key = format!("{base}.json");
    let csv_key = format!("{base}.csv");
    put(
        s3,
        &config.bucket,
        &json_key,
        report.to_json().to_string(),
        "application/json",
    )
    .await?;
    put(s3, &config.bucket, &csv_key, report.to_csv(), "text/csv").await?;
    tracing::info!(
        year,
        members_with_app_access = report.members_with_app_access,
        members_with_repeat_app_access = report.members_with_repeat_app_access,
        "usage report written"
    );
    Ok((report, [json_key, csv_key]))
}

async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: String,
    content_type: &str,
) -> Result<(), FunctionError> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .body(body.into_bytes().into())
        .send()
        .await
        .map_err(|e| FunctionError::Put {
            key: key.to_owned(),
            reason: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })?;
    Ok(())
}

/// JSON logs, as every function writes them.
pub use lambda_adapter::init_tracing;

/// The table's key-value port from `TABLE_NAME`.
pub async fn store_from_env()
-> Result<(aws_config::SdkConfig, store_dynamodb::DynamoStore), FunctionError> {
    let table = std::env::var("TABLE_NAME").map_err(|_| FunctionError::Missing("TABLE_NAME"))?;
    let aws = aws_config::load_from_env().await;
    let store = store_dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    Ok((aws, store))
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_january_run_reports_the_year_before_and_on_demand_runs_name_theirs() {
        // 2027-01-02T12:00:00Z, the schedule's time.
        let january = 1_798_891_200_000;
        assert_eq!(report_year(&json!({}), january).ok(), Some(2026));
        assert_eq!(
            report_year(&json!({"year": 2025}), january).ok(),
            Some(2025)
        );
        assert!(report_year(&json!({"year": "last"}), january).is_err());
    }
}
