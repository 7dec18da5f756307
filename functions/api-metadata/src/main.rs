//! Lambda function serving `GET /metadata`: the CapabilityStatement, generated from
//! what the server implements.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_adapter::run_metadata_function().await
}
