//! Lambda function `directory-load`: S3 ObjectCreated events on `directory/` → the
//! provider directory load, into the directory's own table.

use edi_ingest_fn::DirectoryLoadFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = DirectoryLoadFunction::from_env().await?;
    lambda_adapter::serve_events(|event| function.handle(event)).await
}
