//! Lambda function `api-provenance`: `/Provenance` read, vread and search (where a
//! member's records received from other plans came from), through the generic
//! resource handler in `fhir-api`.

use api_fn::ResourceFunction;
use fhir::ResourceType;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = ResourceFunction::from_env(ResourceType::Provenance).await?;
    let edge_secret = secrets_manager::named_in_env(lambda_adapter::ORIGIN_VERIFY_SECRET_VAR).await;
    lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await
}
