//! Lambda function `p2p-requests`: the Payer-to-Payer requests due, every 15 minutes
//! (EventBridge Scheduler).

use bulk_export_fn::p2p::P2pRequestsFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = P2pRequestsFunction::from_env().await?;
    lambda_adapter::serve_events(|_: serde_json::Value| function.run(fhir::clock::unix_now())).await
}
