//! Lambda function `bulk-api`: the HTTP surface for backend (system-token) clients:
//! Provider Access (Group read and search, `$export` kick-off, status, cancel, file
//! downloads) and Payer-to-Payer (`$member-match`, `$everything`).

use bulk_export_fn::BulkApiFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = BulkApiFunction::from_env().await?;
    let edge_secret = secrets_manager::named_in_env(lambda_adapter::ORIGIN_VERIFY_SECRET_VAR).await;
    lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await
}
