//! Lambda function `auth-server`: every endpoint of the SMART authorization server.

// The server's futures (generic ports over the DynamoDB, Cognito and KMS clients) nest
// deeper than the default layout query limit.
#![recursion_limit = "256"]

use auth_server_fn::AuthServerFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = AuthServerFunction::from_env().await?;
    let edge_secret = secrets_manager::named_in_env(lambda_adapter::ORIGIN_VERIFY_SECRET_VAR).await;
    lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await
}
