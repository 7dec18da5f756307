//! Lambda function serving `/Organization`: read, vread and search, through the generic
//! resource handler in `fhir-api`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_adapter::run_resource_function(fhir::ResourceType::Organization).await
}
