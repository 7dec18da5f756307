//! Lambda function `auth-triggers`: every trigger of the member user pool.

// The trigger futures (generic ports over the DynamoDB and SES clients) nest deeper
// than the default layout query limit.
#![recursion_limit = "256"]

use auth_triggers_fn::TriggersFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = TriggersFunction::from_env().await?;
    lambda_adapter::serve_events(|event| function.handle(event)).await
}
