//! The yearly CMS usage report → S3 (see the crate docs).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    usage_metrics_fn::init_tracing();
    let config = usage_metrics_fn::ReportConfig::from_env()?;
    let (aws, store) = usage_metrics_fn::store_from_env().await?;
    let s3 = s3_objects::client_for(&aws);
    let (store, s3, config) = (&store, &s3, &config);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let year = usage_metrics_fn::report_year(&event.payload, usage_metrics_fn::now_ms())?;
        let (report, keys) = usage_metrics_fn::report(store, s3, config, year).await?;
        Ok::<_, Error>(json!({"report": report.to_json(), "keys": keys}))
    }))
    .await
}
