use fhir_api::{ApiConfig, OAuthUris};
use lambda_http::{Request, RequestExt};

/// What a function reads from its environment (set by template.yaml).
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    /// `FHIR_BASE_URL`: the public base URL (custom domain). Unset: the request's domain.
    pub base_url: Option<String>,
    /// `TOKEN_ISSUER`: who signs access tokens. Unset: our own authorization server at the base URL.
    pub token_issuer: Option<String>,
    /// `JWKS_URL`: the issuer's key set. Unset: `{issuer}/.well-known/jwks.json`.
    pub jwks_url: Option<String>,
    /// `CURSOR_SECRET`: seals paging cursors; the same in every function.
    pub cursor_secret: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} must be at least 32 bytes")]
    TooShort(&'static str),
}

impl FunctionConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let config = FunctionConfig {
            table_name: required("TABLE_NAME")?,
            cursor_secret: required("CURSOR_SECRET")?,
            ..FunctionConfig::from_env_without_store()?
        };
        if config.cursor_secret.len() < 32 {
            return Err(ConfigError::TooShort("CURSOR_SECRET"));
        }
        Ok(config)
    }

    /// For functions that touch no data (`/metadata`).
    pub fn from_env_without_store() -> Result<Self, ConfigError> {
        Ok(FunctionConfig {
            table_name: String::new(),
            base_url: optional("FHIR_BASE_URL").map(|url| url.trim_end_matches('/').to_owned()),
            token_issuer: optional("TOKEN_ISSUER"),
            jwks_url: optional("JWKS_URL"),
            cursor_secret: String::new(),
        })
    }

    /// The configured base URL, or `https://{domainName}` from the API Gateway context.
    pub fn base_url_for(&self, request: &Request) -> String {
        if let Some(base) = &self.base_url {
            return base.clone();
        }
        let domain = match request.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
                context.domain_name.clone()
            }
            _ => None,
        };
        let host = domain.or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
        format!("https://{}", host.unwrap_or_else(|| "localhost".to_owned()))
    }

    pub fn api_config(&self, base_url: &str) -> ApiConfig {
        let mut config = ApiConfig::new(base_url);
        let issuer = self
            .token_issuer
            .clone()
            .unwrap_or_else(|| base_url.to_owned());
        config.oauth = Some(OAuthUris::for_issuer(&issuer));
        config
    }
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A required environment variable, non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}
