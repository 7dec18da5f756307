//! Lambda function `edi-ingest`: S3 ObjectCreated events on `inbound/` → the X12
//! ingest pipeline.

use edi_ingest_fn::IngestFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = IngestFunction::from_env().await?;
    lambda_adapter::serve_events(|event| function.handle(event)).await
}
