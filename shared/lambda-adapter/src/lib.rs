//! Everything a FHIR Lambda function needs besides its one line of `main`.
//!
//! A function is `lambda_adapter::run_resource_function(ResourceType::Patient)`: this
//! crate reads the environment, builds the DynamoDB store and the token verifier once
//! per cold start, converts each API Gateway (HTTP API, payload 2.0) event into a plain
//! `http::Request<Bytes>` for [`fhir_api::ResourceApi`], and converts the answer back.
//! The authorization server's function (crate `auth-server`) uses the same
//! configuration and event conversion.

mod config;
mod convert;

pub use config::{ConfigError, FunctionConfig, required};
pub use convert::{from_lambda, to_lambda};

use std::collections::HashMap;
use std::sync::Arc;

use fhir::ResourceType;
use fhir_api::{ApiError, JsonFlavour, ResourceApi, error_response, metadata_response};
use lambda_http::{Body, Error, Request, Response, service_fn};
use smart_auth::{AuthError, CursorSealer, HttpJwks, TokenVerifier, VerifierConfig};
use store_dynamodb::DynamoStore;
use tokio::sync::Mutex;

/// JSON logs on Lambda (CloudWatch Logs Insights reads the fields), filtered by `RUST_LOG`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line already.
        .init();
}

/// Runs the Lambda function that serves one FHIR resource type.
pub async fn run_resource_function(resource_type: ResourceType) -> Result<(), Error> {
    init_tracing();
    let config = FunctionConfig::from_env()?;
    let aws = aws_config::load_from_env().await;
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config.table_name.clone(),
    ));
    let sealer = Arc::new(CursorSealer::from_secret(config.cursor_secret.as_bytes())?);
    let apis = ApiPerBaseUrl::new(resource_type, store, sealer, config);
    lambda_http::run(service_fn(|request: Request| {
        let apis = &apis;
        async move { Ok::<_, Error>(apis.handle(request).await) }
    }))
    .await
}

/// Runs the Lambda function that serves `GET /metadata`.
pub async fn run_metadata_function() -> Result<(), Error> {
    init_tracing();
    let config = FunctionConfig::from_env_without_store()?;
    lambda_http::run(service_fn(|request: Request| {
        let config = &config;
        async move {
            let base_url = config.base_url_for(&request);
            let api_config = config.api_config(&base_url);
            let request = from_lambda(request);
            Ok::<_, Error>(to_lambda(metadata_response(&api_config, &request)))
        }
    }))
    .await
}

/// One [`ResourceApi`] per public base URL.
///
/// Tokens name the FHIR base URL as their audience. When `FHIR_BASE_URL` is set (a
/// custom domain) there is exactly one; otherwise the base URL is the API Gateway
/// domain the request came through, learned from the first request on it. A template
/// cannot pass the API's own URL to its functions without a circular dependency.
struct ApiPerBaseUrl {
    resource_type: ResourceType,
    store: Arc<DynamoStore>,
    sealer: Arc<CursorSealer>,
    config: FunctionConfig,
    apis: Mutex<HashMap<String, ResourceApi<DynamoStore>>>,
}

impl ApiPerBaseUrl {
    fn new(
        resource_type: ResourceType,
        store: Arc<DynamoStore>,
        sealer: Arc<CursorSealer>,
        config: FunctionConfig,
    ) -> Self {
        ApiPerBaseUrl {
            resource_type,
            store,
            sealer,
            config,
            apis: Mutex::new(HashMap::new()),
        }
    }

    async fn handle(&self, request: Request) -> Response<Body> {
        let base_url = self.config.base_url_for(&request);
        let request = from_lambda(request);
        match self.api_for(&base_url).await {
            Ok(api) => to_lambda(api.handle(request).await),
            Err(error) => to_lambda(error_response(
                &ApiError::Internal(error.to_string()),
                JsonFlavour::Fhir,
            )),
        }
    }

    async fn api_for(&self, base_url: &str) -> Result<ResourceApi<DynamoStore>, AuthError> {
        let mut apis = self.apis.lock().await;
        if let Some(api) = apis.get(base_url) {
            return Ok(api.clone());
        }
        let issuer = self
            .config
            .token_issuer
            .clone()
            .unwrap_or_else(|| base_url.to_owned());
        let jwks_url = self
            .config
            .jwks_url
            .clone()
            .unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        let verifier = TokenVerifier::new(VerifierConfig::new(
            issuer,
            base_url.to_owned(),
            Arc::new(HttpJwks::new(jwks_url)?),
        ));
        let api = ResourceApi::new(
            self.resource_type,
            Arc::clone(&self.store),
            Arc::new(verifier),
            Arc::clone(&self.sealer),
            Arc::new(self.config.api_config(base_url)),
        );
        apis.insert(base_url.to_owned(), api.clone());
        Ok(api)
    }
}
