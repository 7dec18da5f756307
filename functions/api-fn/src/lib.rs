//! The FHIR API on Lambda: the wiring shared by the function of each resource type
//! (`src/bin/api-<type>.rs`, [`ResourceFunction`]) and the `/metadata` function
//! ([`MetadataFunction`]).
//!
//! One package with a binary per function, rather than a crate per function: the
//! binaries differ only in the resource type they pass, and template.yaml still builds
//! each as its own function (`BuildProperties: Binary: api-<type>`) with its own
//! least-privilege role, log group and routes.
//!
//! Environment: `TABLE_NAME` and `CURSOR_SECRET_ARN` (the resource functions; the
//! secret itself is read from Secrets Manager at cold start and every few minutes),
//! `FHIR_BASE_URL`, `TOKEN_ISSUER` and `JWKS_URL` (all optional; see template.yaml).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use fhir::ResourceType;
use fhir_api::{ApiConfig, ApiError, JsonFlavour, ResourceApi, error_response, metadata_response};
use lambda_adapter::{BaseUrl, ConfigError, from_lambda, optional, parsed, required, to_lambda};
use lambda_http::{Body, Request, Response};
use secrets::{KeyRefresher, SourceError};
use secrets_manager::SecretsManagerSource;
use smart_auth::{AuthError, CursorError, CursorSealer, HttpJwks, TokenVerifier, VerifierConfig};
use store_dynamodb::DynamoStore;
use tokio::sync::Mutex;

/// Why a FHIR function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cursor secret: {0}")]
    Cursor(#[from] CursorError),
    #[error("cursor secret: {0}")]
    Secret(#[from] SourceError),
}

/// Who issues the tokens the API accepts, and where the API is.
#[derive(Debug, Clone)]
struct FhirEnv {
    base_url: BaseUrl,
    /// `TOKEN_ISSUER`. Unset: our own authorization server at the base URL.
    token_issuer: Option<String>,
    /// `JWKS_URL`. Unset: `{issuer}/.well-known/jwks.json`.
    jwks_url: Option<String>,
    /// `CLIENT_REQUESTS_PER_MINUTE`: each app's request budget (0: none). Unset:
    /// [`fhir_api::DEFAULT_CLIENT_REQUESTS_PER_MINUTE`].
    client_requests_per_minute: u32,
}

impl FhirEnv {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(FhirEnv {
            base_url: BaseUrl::from_env(),
            token_issuer: optional("TOKEN_ISSUER"),
            jwks_url: optional("JWKS_URL"),
            client_requests_per_minute: parsed::<u32>("CLIENT_REQUESTS_PER_MINUTE")?
                .unwrap_or(fhir_api::DEFAULT_CLIENT_REQUESTS_PER_MINUTE),
        })
    }

    fn api_config(&self, base_url: &str) -> ApiConfig {
        let mut config = ApiConfig::with_issuer(base_url, self.token_issuer.as_deref());
        config.client_budget = fhir_api::requests_per_minute(self.client_requests_per_minute);
        config
    }
}

/// The function serving one resource type: read, vread and search.
///
/// It keeps one [`ResourceApi`] per public base URL. Tokens name the FHIR base URL as
/// their audience: with `FHIR_BASE_URL` (a custom domain) there is exactly one;
/// otherwise the base URL is the API Gateway domain the request came through, learned
/// from the first request on it.
pub struct ResourceFunction {
    resource_type: ResourceType,
    env: FhirEnv,
    store: Arc<DynamoStore>,
    sealer: Arc<CursorSealer>,
    /// Re-reads the cursor secret every few minutes, so a rotation needs no redeploy.
    cursor_keys: KeyRefresher<SecretsManagerSource>,
    apis: Mutex<HashMap<String, ResourceApi<DynamoStore>>>,
}

impl ResourceFunction {
    /// The cold start: environment, DynamoDB client, cursor keys (Secrets Manager).
    pub async fn from_env(resource_type: ResourceType) -> Result<Self, StartError> {
        let table_name = required("TABLE_NAME")?;
        let secret_arn = required("CURSOR_SECRET_ARN")?;
        let aws = aws_config::load_from_env().await;
        let (cursor_keys, ring) =
            secrets_manager::load(aws_sdk_secretsmanager::Client::new(&aws), secret_arn).await?;
        let sealer = CursorSealer::from_ring(&ring)?;
        Ok(ResourceFunction {
            resource_type,
            env: FhirEnv::from_env()?,
            store: Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(&aws),
                table_name,
            )),
            sealer: Arc::new(sealer),
            cursor_keys,
            apis: Mutex::new(HashMap::new()),
        })
    }

    /// Answers one request; failures are OperationOutcomes, never a failed invocation.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if let Some(ring) = self.cursor_keys.refresh_if_due(Instant::now()).await
            && let Err(error) = self.sealer.install(&ring)
        {
            tracing::error!(%error, "rotated cursor secret refused; keeping the current keys");
        }
        let base_url = self.env.base_url.for_request(&request);
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
            .env
            .token_issuer
            .clone()
            .unwrap_or_else(|| base_url.to_owned());
        let jwks_url = self
            .env
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
            Arc::new(self.env.api_config(base_url)),
        );
        apis.insert(base_url.to_owned(), api.clone());
        Ok(api)
    }
}

/// The function serving `GET /metadata`: the CapabilityStatement. It touches no data.
pub struct MetadataFunction {
    env: FhirEnv,
}

impl MetadataFunction {
    /// The cold start: the environment only. Async like every function's `from_env`,
    /// so that every `main` reads the same.
    pub async fn from_env() -> Result<Self, StartError> {
        Ok(MetadataFunction {
            env: FhirEnv::from_env()?,
        })
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        let config = self
            .env
            .api_config(&self.env.base_url.for_request(&request));
        to_lambda(metadata_response(&config, &from_lambda(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API_GATEWAY: &str = "https://abc123xyz.execute-api.us-east-1.amazonaws.com";

    /// The CapabilityStatement the metadata function answers `events/metadata.json` with.
    async fn capability(token_issuer: Option<&str>) -> serde_json::Value {
        let function = MetadataFunction {
            env: FhirEnv {
                base_url: BaseUrl::default(),
                token_issuer: token_issuer.map(str::to_owned),
                jwks_url: None,
                client_requests_per_minute: 0,
            },
        };
        let request = lambda_http::request::from_str(include_str!("../../../events/metadata.json"))
            .expect("a valid API Gateway v2 event");
        let response = function.handle(request).await;
        assert_eq!(response.status(), 200);
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON"),
            other => panic!("expected a text body, got {other:?}"),
        }
    }

    fn authorize_uri(capability: &serde_json::Value) -> &str {
        capability["rest"][0]["security"]["extension"][0]["extension"]
            .as_array()
            .and_then(|uris| uris.iter().find(|uri| uri["url"] == "authorize"))
            .and_then(|uri| uri["valueUri"].as_str())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn without_settings_the_base_url_and_issuer_are_the_api_gateway_domain() {
        let capability = capability(None).await;
        assert_eq!(capability["implementation"]["url"], API_GATEWAY);
        assert_eq!(
            authorize_uri(&capability),
            format!("{API_GATEWAY}/authorize")
        );
    }

    #[tokio::test]
    async fn an_external_token_issuer_is_advertised_for_sign_in() {
        let capability = capability(Some("https://login.plan.example")).await;
        assert_eq!(capability["implementation"]["url"], API_GATEWAY);
        assert_eq!(
            authorize_uri(&capability),
            "https://login.plan.example/authorize"
        );
    }
}
