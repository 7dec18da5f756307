//! Lambda function `audit-archive`: `audit` log lines (CloudWatch Logs subscription)
//! → the audit archive bucket.

use audit_archive_fn::ArchiveFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = ArchiveFunction::from_env().await?;
    lambda_adapter::serve_events(|event| function.handle(event)).await
}
