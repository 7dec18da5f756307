//! Lambda function serving the public pages: `/members`, `/developers` and `/apps`.
//!
//! Branding and rate limits come from the environment (template.yaml); the base URL
//! and OAuth endpoints from the same configuration the FHIR functions use, so the
//! developer portal prints the URLs those functions answer on. The app directory reads
//! the authorization server's registry in the table (read-only, `K#app` items only).

use std::sync::Arc;

use lambda_adapter::FunctionConfig;
use lambda_http::{Error, Request, service_fn};
use public_pages::{PagesConfig, PublicPages, RegistryDirectory};
use store_dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_adapter::init_tracing();
    let function = FunctionConfig::from_env_without_store()?;
    let table =
        std::env::var("TABLE_NAME").map_err(|_| "environment variable TABLE_NAME is required")?;
    let aws = aws_config::load_from_env().await;
    let registry = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
    let pages = PublicPages::new(PagesConfig::from_env()?, RegistryDirectory::new(registry));
    lambda_http::run(service_fn(|request: Request| {
        let (function, pages) = (&function, &pages);
        async move { Ok::<_, Error>(public_pages_fn::answer(function, pages, request).await) }
    }))
    .await
}
