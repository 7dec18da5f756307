//! Lambda function serving the public pages: `/members`, `/developers` and `/apps`.
//!
//! Branding and rate limits come from the environment (template.yaml); the base URL
//! and OAuth endpoints from the same configuration the FHIR functions use, so the
//! developer portal prints the URLs those functions answer on.

use lambda_adapter::{FunctionConfig, from_lambda, to_lambda};
use lambda_http::{Error, Request, service_fn};
use public_pages::{PagesConfig, PublicPages, StaticDirectory};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_adapter::init_tracing();
    let function = FunctionConfig::from_env_without_store()?;
    let pages = PublicPages::new(PagesConfig::from_env()?, StaticDirectory::default());
    lambda_http::run(service_fn(|request: Request| {
        let (function, pages) = (&function, &pages);
        async move {
            let api = function.api_config(&function.base_url_for(&request));
            let request = from_lambda(request);
            Ok::<_, Error>(to_lambda(pages.handle(&request, &api).await))
        }
    }))
    .await
}
