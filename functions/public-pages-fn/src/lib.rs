//! The public pages on Lambda: one API Gateway event in, one response out.
//!
//! Branding and rate limits come from the environment (template.yaml); the base URL
//! and OAuth endpoints from the same settings the FHIR functions read, so the
//! developer portal prints the URLs those functions answer on. The app directory reads
//! the authorization server's registry in the table (read-only, `K#app` items only).
//!
//! "Find a provider" (`/directory/find`) searches the provider directory's own
//! table (read-only) with the directory API's search code.
//!
//! Environment: `TABLE_NAME`, `DIRECTORY_TABLE_NAME`, `CURSOR_SECRET_ARN` (the cursor key, read from Secrets Manager), `FHIR_BASE_URL`
//! and `TOKEN_ISSUER` (optional), and the `PLAN_*` branding and rate-limit settings of
//! `public_pages::PagesConfig`.

use std::sync::Arc;

use directory_api::{DIRECTORY_PREFIX, DirectoryApi, DirectoryConfig};
use fhir_api::ApiConfig;
use lambda_adapter::{BaseUrl, ConfigError, from_lambda, optional, required, to_lambda};
use lambda_http::{Body, Request, Response};
use public_pages::{PagesConfig, PublicPages, RegistryDirectory};
use store_dynamodb::DynamoStore;

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pages(#[from] public_pages::ConfigError),
    #[error("cursor secret: {0}")]
    Secret(#[from] secrets::SourceError),
    #[error("cursor key: {0}")]
    Cursor(#[from] smart_auth::CursorError),
}

/// The pages function.
pub struct PagesFunction {
    base_url: BaseUrl,
    /// `TOKEN_ISSUER`: whose OAuth endpoints the developer portal names.
    token_issuer: Option<String>,
    pages: PublicPages,
}

impl PagesFunction {
    /// The cold start: environment, branding, the registry's DynamoDB client.
    pub async fn from_env() -> Result<Self, StartError> {
        let table = required("TABLE_NAME")?;
        let directory_table = required("DIRECTORY_TABLE_NAME")?;
        let secret_arn = required("CURSOR_SECRET_ARN")?;
        let config = PagesConfig::from_env()?;
        let aws = aws_config::load_from_env().await;
        // Find a provider pages by the directory's own links, never by a cursor, so the
        // ring read at cold start is enough here (no refresh).
        let (_, ring) =
            secrets_manager::load(aws_sdk_secretsmanager::Client::new(&aws), secret_arn).await?;
        let sealer = smart_auth::CursorSealer::from_ring(&ring)?;
        let client = aws_sdk_dynamodb::Client::new(&aws);
        let registry = Arc::new(DynamoStore::new(client.clone(), table));
        // The page reads the directory only through `DirectoryApi::find`, which
        // builds no links, so the base URL here is never shown.
        let directory = DirectoryApi::new(
            Arc::new(DynamoStore::new(client, directory_table)),
            Arc::new(sealer),
            DirectoryConfig::new(DIRECTORY_PREFIX),
        );
        Ok(PagesFunction::new(
            BaseUrl::from_env(),
            optional("TOKEN_ISSUER"),
            PublicPages::new(config, RegistryDirectory::new(registry))
                .with_provider_search(directory),
        ))
    }

    pub fn new(base_url: BaseUrl, token_issuer: Option<String>, pages: PublicPages) -> Self {
        PagesFunction {
            base_url,
            token_issuer,
            pages,
        }
    }

    /// Answers one request with the base URL (and so the OAuth endpoints) of the API
    /// Gateway domain or custom domain it came through, as the FHIR functions do.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let base_url = self.base_url.for_request(&request);
        let api = ApiConfig::with_issuer(&base_url, self.token_issuer.as_deref());
        to_lambda(self.pages.handle(&from_lambda(request), &api).await)
    }
}

#[cfg(test)]
mod tests {
    use public_pages::StaticDirectory;

    use super::*;

    async fn page(event: &str) -> (u16, String, String) {
        let request = lambda_http::request::from_str(event).expect("a valid API Gateway v2 event");
        let pages = PublicPages::new(PagesConfig::default(), StaticDirectory::default());
        let function = PagesFunction::new(BaseUrl::default(), None, pages);
        let response = function.handle(request).await;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = match response.body() {
            Body::Text(text) => text.clone(),
            other => panic!("expected a text body, got {other:?}"),
        };
        (response.status().as_u16(), content_type, body)
    }

    #[tokio::test]
    async fn every_route_event_gets_its_page() {
        for (event, heading) in [
            (
                include_str!("../../../events/public-pages-members.json"),
                "Sharing your health information",
            ),
            (
                include_str!("../../../events/public-pages-developers.json"),
                "Developer portal",
            ),
            (
                include_str!("../../../events/public-pages-apps.json"),
                "App directory",
            ),
        ] {
            let (status, content_type, body) = page(event).await;
            assert_eq!(status, 200);
            assert_eq!(content_type, "text/html; charset=utf-8");
            assert!(body.contains(heading), "{heading}");
        }
    }

    #[tokio::test]
    async fn find_a_provider_is_routed_here_and_without_a_directory_says_so() {
        let (status, content_type, body) =
            page(include_str!("../../../events/public-pages-find.json")).await;
        assert_eq!(status, 503);
        assert_eq!(content_type, "text/html; charset=utf-8");
        assert!(body.contains("Provider search unavailable"));
    }

    #[tokio::test]
    async fn the_portal_names_the_domain_the_request_came_through() {
        let (_, _, body) = page(include_str!("../../../events/public-pages-developers.json")).await;
        assert!(body.contains("https://abc123xyz.execute-api.us-east-1.amazonaws.com/metadata"));
        assert!(body.contains("https://abc123xyz.execute-api.us-east-1.amazonaws.com/authorize"));
    }
}
