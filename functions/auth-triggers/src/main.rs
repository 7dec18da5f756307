//! Lambda function serving every trigger of the member user pool.

// The trigger futures (generic ports over the DynamoDB and SES clients) nest deeper
// than the default layout query limit.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    auth_triggers::run().await
}
