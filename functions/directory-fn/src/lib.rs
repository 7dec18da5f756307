//! The public Provider Directory API on Lambda: every `/directory/…` route.
//!
//! The directory has its own DynamoDB table (`DIRECTORY_TABLE_NAME`), and this
//! function's role reaches only that table: nothing here can read a member's data.
//! No token is checked (the directory is public; a token sent is ignored).
//!
//! Environment: `DIRECTORY_TABLE_NAME`, `CURSOR_SECRET_ARN` (the cursor key, read from Secrets Manager), `FHIR_BASE_URL` (optional:
//! without it the base URL is the domain each request came through, plus
//! `/directory`).

use std::sync::Arc;
use std::time::Instant;

use directory_api::{DIRECTORY_PREFIX, DirectoryApi, DirectoryConfig, ResponseCache};
use lambda_adapter::{BaseUrl, ConfigError, from_lambda, required, to_lambda};
use lambda_http::{Body, Request, Response};
use secrets::KeyRefresher;
use secrets_manager::SecretsManagerSource;
use smart_auth::{CursorError, CursorSealer};
use store_dynamodb::DynamoStore;

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cursor secret: {0}")]
    Secret(#[from] secrets::SourceError),
    #[error("cursor key: {0}")]
    Cursor(#[from] CursorError),
}

/// The directory function.
pub struct DirectoryFunction {
    base_url: BaseUrl,
    store: Arc<DynamoStore>,
    sealer: Arc<CursorSealer>,
    /// Re-reads the cursor secret every few minutes, so a rotation needs no redeploy.
    cursor_keys: KeyRefresher<SecretsManagerSource>,
    /// Answers kept while the directory is unchanged, shared by every request's API.
    cache: Arc<ResponseCache>,
}

/// The response and read caches' size: three eighths of the function's 256 MB
/// (template.yaml's Globals).
const RESPONSE_CACHE_BYTES: u64 = 96 * 1024 * 1024;

impl DirectoryFunction {
    /// The cold start: environment, the directory table's client, the cursor key.
    pub async fn from_env() -> Result<Self, StartError> {
        let table = required("DIRECTORY_TABLE_NAME")?;
        let secret_arn = required("CURSOR_SECRET_ARN")?;
        let aws = aws_config::load_from_env().await;
        let (cursor_keys, ring) =
            secrets_manager::load(aws_sdk_secretsmanager::Client::new(&aws), secret_arn).await?;
        Ok(DirectoryFunction {
            base_url: BaseUrl::from_env(),
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table)),
            sealer: Arc::new(CursorSealer::from_ring(&ring)?),
            cursor_keys,
            // A warm instance reads the generation (one GetItem) once a second.
            cache: Arc::new(ResponseCache::serving(RESPONSE_CACHE_BYTES)),
        })
    }

    /// The directory API for the base URL a request came through (cheap: two `Arc`s
    /// and the settings), so links name the domain the client used.
    pub fn api_for(&self, base_url: &str) -> DirectoryApi<DynamoStore> {
        DirectoryApi::new(
            Arc::clone(&self.store),
            Arc::clone(&self.sealer),
            DirectoryConfig::new(format!("{base_url}{DIRECTORY_PREFIX}")),
        )
        .with_cache(Arc::clone(&self.cache))
    }

    /// Answers one request; failures are OperationOutcomes, never a failed invocation.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if let Some(ring) = self.cursor_keys.refresh_if_due(Instant::now()).await
            && let Err(error) = self.sealer.install(&ring)
        {
            tracing::error!(%error, "rotated cursor secret refused; keeping the current keys");
        }
        let api = self.api_for(&self.base_url.for_request(&request));
        to_lambda(api.handle(from_lambda(request)).await)
    }
}
