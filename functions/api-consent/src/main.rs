//! Lambda function serving `/Consent`: the member's own app grants (read, vread,
//! search with `patient/Consent.rs`), through the generic resource handler in `fhir-api`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_adapter::run_resource_function(fhir::ResourceType::Consent).await
}
