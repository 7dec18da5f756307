//! Lambda function `api-metadata`: `GET /metadata`, the CapabilityStatement, generated
//! from what the server implements.

use api_fn::MetadataFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = MetadataFunction::from_env().await?;
    let edge_secret = secrets_manager::named_in_env(lambda_adapter::ORIGIN_VERIFY_SECRET_VAR).await;
    lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await
}
