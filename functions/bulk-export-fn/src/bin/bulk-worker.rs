//! Lambda function `bulk-worker`: export slices from the work queue (SQS), with
//! partial-batch failure reporting.

use bulk_export_fn::BulkWorkerFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = BulkWorkerFunction::from_env().await?;
    lambda_adapter::serve_events(|event| function.handle(event)).await
}
