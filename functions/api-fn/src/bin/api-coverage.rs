//! Lambda function `api-coverage`: `/Coverage` read, vread and search,
//! through the generic resource handler in `fhir-api`.

use api_fn::ResourceFunction;
use fhir::ResourceType;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = ResourceFunction::from_env(ResourceType::Coverage).await?;
    lambda_adapter::serve_http(|request| function.handle(request)).await
}
