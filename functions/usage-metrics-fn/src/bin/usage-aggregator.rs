//! CloudWatch Logs subscription → usage records (see the crate docs).

use aws_lambda_events::event::cloudwatch_logs::LogsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    usage_metrics_fn::init_tracing();
    let (_, store) = usage_metrics_fn::store_from_env().await?;
    let store = &store;
    lambda_runtime::run(service_fn(|event: LambdaEvent<LogsEvent>| async move {
        Ok::<_, Error>(usage_metrics_fn::aggregate(store, &event.payload).await?)
    }))
    .await
}
