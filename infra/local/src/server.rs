use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use fhir::ResourceType;
use fhir_api::{
    ApiConfig, ApiError, JsonFlavour, OAuthUris, ResourceApi, error_response, metadata_response,
};
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Request, Response, StatusCode};
use smart_auth::{CursorSealer, LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig};

/// Every Lambda handler behind one port, routed the way API Gateway routes them.
pub struct LocalServer<S> {
    apis: HashMap<ResourceType, ResourceApi<S>>,
    config: Arc<ApiConfig>,
    jwks: serde_json::Value,
    /// The SMART authorization server, when mounted (`serve` mounts it).
    auth: Option<Arc<dyn crate::auth::AuthHandler>>,
    /// Operator endpoint for the `apps` commands while `serve` holds the store:
    /// `(key, handler)`.
    admin: Option<Arc<dyn crate::admin::AdminHandler>>,
    /// `/members`, `/developers`, `/apps`, when mounted (`serve` mounts them).
    pages: Option<Arc<public_pages::PublicPages>>,
    /// The public provider directory under `/directory`, over its own store.
    directory: Option<Arc<directory_api::DirectoryApi<store_redb::RedbStore>>>,
    /// The Provider Access API (Group, `$export`, status, files), when mounted.
    provider_access: Option<Arc<dyn crate::provider_access::BulkHandler>>,
    /// Payer-to-Payer `POST /Patient/$member-match`, when mounted.
    member_match: Option<Arc<dyn crate::provider_access::BulkHandler>>,
}

impl<S: ResourceStore + KeyValueStore + 'static> LocalServer<S> {
    pub fn new(
        store: Arc<S>,
        issuer: &LocalIssuer,
        cursor_keys: &secrets::KeyRing,
        base_url: &str,
    ) -> Result<Self, String> {
        let mut config = ApiConfig::new(base_url);
        config.oauth = Some(OAuthUris::for_issuer(&config.base_url));
        // The runner's own tests and the `token` dev command mint tokens without a grant.
        config.allow_tokens_without_grant = true;
        let config = Arc::new(config);
        let verifier = Arc::new(TokenVerifier::new(VerifierConfig::new(
            config.base_url.clone(),
            config.base_url.clone(),
            Arc::new(StaticJwks::new(issuer.jwks())),
        )));
        let sealer = Arc::new(CursorSealer::from_ring(cursor_keys).map_err(|e| e.to_string())?);
        let apis = ResourceType::ALL
            .into_iter()
            .map(|t| {
                let api = ResourceApi::new(
                    t,
                    Arc::clone(&store),
                    Arc::clone(&verifier),
                    Arc::clone(&sealer),
                    Arc::clone(&config),
                );
                (t, api)
            })
            .collect();
        Ok(LocalServer {
            apis,
            config,
            jwks: issuer.jwks_json(),
            auth: None,
            admin: None,
            pages: None,
            directory: None,
            provider_access: None,
            member_match: None,
        })
    }

    /// Mounts the authorization server (discovery, /authorize, /token, …).
    pub fn with_auth(mut self, auth: Arc<dyn crate::auth::AuthHandler>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Mounts the loopback admin endpoint the `apps` commands use.
    pub fn with_admin(mut self, admin: Arc<dyn crate::admin::AdminHandler>) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Mounts the Provider Access API for backend clients.
    pub fn with_provider_access(
        mut self,
        api: Arc<dyn crate::provider_access::BulkHandler>,
    ) -> Self {
        self.provider_access = Some(api);
        self
    }

    /// Mounts Payer-to-Payer `$member-match` for backend clients registered as payers.
    pub fn with_member_match(mut self, api: Arc<dyn crate::provider_access::BulkHandler>) -> Self {
        self.member_match = Some(api);
        self
    }

    /// Mounts the public pages (member education, developer portal, app directory).
    pub fn with_public_pages(mut self, pages: Arc<public_pages::PublicPages>) -> Self {
        self.pages = Some(pages);
        self
    }

    /// Mounts the public provider directory (Plan-Net) at `/directory`.
    pub fn with_directory(
        mut self,
        directory: Arc<directory_api::DirectoryApi<store_redb::RedbStore>>,
    ) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Grant-less dev tokens (`patient-access token`) are accepted only when asked for.
    pub fn allow_tokens_without_grant(self, allow: bool) -> Result<Self, String> {
        self.reconfigure(|config| config.allow_tokens_without_grant = allow)
    }

    /// How long a grant-status answer is reused (capped at
    /// [`fhir_api::MAX_GRANT_CACHE_TTL`]); end-to-end tests shorten it to see a revoked
    /// grant's access tokens stop working without waiting a minute.
    pub fn grant_cache_ttl(self, ttl: std::time::Duration) -> Result<Self, String> {
        self.reconfigure(|config| config.grant_cache_ttl = ttl)
    }

    /// Each app's request budget (`serve --client-requests-per-minute`; `None`: none).
    pub fn client_budget(self, budget: Option<fhir_store::budget::Budget>) -> Result<Self, String> {
        self.reconfigure(|config| config.client_budget = budget)
    }

    fn reconfigure(mut self, change: impl FnOnce(&mut ApiConfig)) -> Result<Self, String> {
        let mut config = (*self.config).clone();
        change(&mut config);
        let config = Arc::new(config);
        self.apis = self
            .apis
            .into_values()
            .map(|api| (api.resource_type(), api.with_config(Arc::clone(&config))))
            .collect();
        self.config = config;
        Ok(self)
    }

    /// Routes one request: `/metadata`, the issuer's JWKS, or a resource type's handler.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let path = request.uri().path();
        if path == "/metadata" {
            return metadata_response(&self.config, &request);
        }
        // `/directory/find` is a public page, the rest of `/directory` the API.
        if let Some(pages) = &self.pages
            && public_pages::PublicPages::serves(path)
        {
            return pages.handle(&request, &self.config).await;
        }
        if let Some(directory) = &self.directory
            && directory_api::DirectoryApi::<store_redb::RedbStore>::serves(path)
        {
            return directory.handle(request).await;
        }
        if let Some(admin) = &self.admin
            && path.starts_with(crate::admin::ADMIN_ROOT)
        {
            return admin.handle(request).await;
        }
        if let Some(auth) = &self.auth
            && smart_server::serves_path(path)
        {
            return auth.handle(request).await;
        }
        // Payer-to-Payer first: its `/Group/{id}/$davinci-data-export` is under the
        // bulk API's `/Group/` (the order bulk-api's `BackendApis` keeps on AWS).
        if let Some(member_match) = &self.member_match
            && payer_to_payer::api::serves_path(path)
        {
            return member_match.handle(request).await;
        }
        if let Some(bulk) = &self.provider_access
            && bulk_export::api::serves_path(path)
        {
            return bulk.handle(request).await;
        }
        if path == "/.well-known/jwks.json" {
            let mut response = Response::new(Bytes::from(self.jwks.to_string()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return response;
        }
        let first_segment = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match first_segment
            .parse::<ResourceType>()
            .ok()
            .and_then(|t| self.apis.get(&t))
        {
            Some(api) => api.handle(request).await,
            None => error_response(
                &ApiError::NotFound(format!("no endpoint at /{first_segment}")),
                JsonFlavour::Fhir,
            ),
        }
    }

    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }
}

/// The axum app: one catch-all route into [`LocalServer::handle`], behind the same
/// header policy as every Lambda function (`http_policy`, applied there by
/// `lambda_adapter::serve_http`): CORS per endpoint (a public SMART client in a browser
/// reaches `/token` and the FHIR API from its own origin, no other origin reads the
/// member pages) and the security headers, without HSTS (served over plain HTTP).
pub fn router<S: ResourceStore + KeyValueStore + 'static>(server: Arc<LocalServer<S>>) -> Router {
    Router::new().fallback(dispatch::<S>).with_state(server)
}

const TRANSPORT: http_policy::Transport = http_policy::Transport::Http;

async fn dispatch<S: ResourceStore + KeyValueStore + 'static>(
    State(server): State<Arc<LocalServer<S>>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if let Some(preflight) =
        http_policy::preflight::<Body>(&parts.method, &path, &parts.headers, TRANSPORT)
    {
        return preflight;
    }
    let limit = server.max_body_bytes();
    let mut response = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => server.handle(Request::from_parts(parts, bytes)).await,
        Err(_) => {
            let mut response =
                error_response(&ApiError::PayloadTooLarge { limit }, JsonFlavour::Fhir);
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            response
        }
    };
    http_policy::secure(&path, TRANSPORT, &mut response);
    response.map(Body::from)
}
