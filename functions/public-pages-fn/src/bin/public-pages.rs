//! Lambda function `public-pages`: `/members`, `/developers`, `/apps` and `/directory/find`.

use public_pages_fn::PagesFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = PagesFunction::from_env().await?;
    lambda_adapter::serve_http(|request| function.handle(request)).await
}
