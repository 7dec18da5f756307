//! Lambda function `directory-api`: the public Provider Directory API, `/directory/…`.

use directory_fn::DirectoryFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_adapter::Error> {
    lambda_adapter::init_tracing();
    let function = DirectoryFunction::from_env().await?;
    lambda_adapter::serve_http(|request| function.handle(request)).await
}
