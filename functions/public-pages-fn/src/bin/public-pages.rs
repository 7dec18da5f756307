//! Lambda function `public-pages`: `/members`, `/developers`, `/apps` and `/directory/find`.

use public_pages_fn::PagesFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = PagesFunction::from_env().await?;
    let edge_secret = secrets_manager::named_in_env(lambda_adapter::ORIGIN_VERIFY_SECRET_VAR).await;
    lambda_adapter::serve_http(edge_secret, |request| function.handle(request)).await
}
