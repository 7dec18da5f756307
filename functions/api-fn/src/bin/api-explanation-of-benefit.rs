//! Lambda function `api-explanation-of-benefit`: `/ExplanationOfBenefit` read, vread and search,
//! through the generic resource handler in `fhir-api`.

use api_fn::ResourceFunction;
use fhir::ResourceType;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = ResourceFunction::from_env(ResourceType::ExplanationOfBenefit).await?;
    let edge_secret = secrets_manager::named_in_env(lambda_adapter::ORIGIN_VERIFY_SECRET_VAR).await;
    lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await
}
