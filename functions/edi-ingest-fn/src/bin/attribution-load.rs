//! Lambda function `attribution-load`: S3 ObjectCreated events on `attribution/` →
//! provider attribution lists (and opt-out values) into the FHIR table, for the
//! Provider Access API.

use edi_ingest_fn::AttributionLoadFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = AttributionLoadFunction::from_env().await?;
    lambda_adapter::serve_events(|event| function.handle(event)).await
}
