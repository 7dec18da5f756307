//! Lambda function serving the SMART authorization server's endpoints; the wiring is
//! `auth_server::run_auth_server_function` (this crate's library).

// The server's futures (generic ports over the DynamoDB, Cognito and KMS clients) nest
// deeper than the default layout query limit.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    auth_server::run_auth_server_function().await
}
