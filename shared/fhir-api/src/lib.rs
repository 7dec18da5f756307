//! The FHIR REST layer.
//!
//! [`ResourceApi`] is the one generic handler behind every per-resource Lambda function
//! and behind the local runner: read, vread, search (GET and `POST _search`),
//! `_include`, sealed paging cursors, content negotiation and OperationOutcome errors.
//! It takes and returns plain [`http`] types, so it knows nothing of Lambda, and it is
//! generic over [`ResourceStore`], so it knows nothing of DynamoDB or redb.
//!
//! Authorization is deny-by-default and happens here on every path: the token is
//! verified, the scope is checked for the interaction, and every resource that leaves
//! (matched, included, or read by version) passes [`smart_auth::may_access`].

pub mod bundle;
mod capability;
mod error;
pub mod negotiate;
pub mod params;
pub mod route;
mod search;

pub use capability::{OAuthUris, capability_statement, metadata_response, search_includes};
pub use error::ApiError;
pub use search::handling;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fhir::ResourceType;
use fhir::clock::unix_now;
use fhir_store::budget::{Budget, Spend};
use fhir_store::{KeyValueStore, ResourceRecord, ResourceStore};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use smart_auth::{Access, CursorSealer, Interaction, Principal, TokenVerifier, may_access};

use route::Route;

/// Settings shared by every resource handler.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The FHIR base URL clients use, without a trailing slash. Links and `fullUrl`s
    /// are built from it, and access tokens must name it as their audience.
    pub base_url: String,
    /// Page size when the client sends no `_count`.
    pub default_count: usize,
    /// The largest page we serve; a larger `_count` is clamped (and the self link says so).
    pub max_count: usize,
    /// The largest `POST _search` body or query string we read.
    pub max_body_bytes: usize,
    /// How long a `next` link stays usable.
    pub cursor_lifetime: Duration,
    /// OAuth endpoints advertised in the CapabilityStatement, once sign-in exists.
    pub oauth: Option<OAuthUris>,
    /// How long one grant-status answer is reused before the Consent is read again:
    /// the longest an unexpired access token keeps working after its grant is revoked.
    /// At most [`MAX_GRANT_CACHE_TTL`].
    pub grant_cache_ttl: Duration,
    /// Accept tokens that carry no `grant_id` (the local `patient-access token` dev
    /// command and the runner's tests). Never set on Lambda: every token the
    /// authorization server mints names its grant.
    pub allow_tokens_without_grant: bool,
    /// Requests one client (the token's `client_id`) may make per window, across
    /// every resource type and instance, counted in the key-value store; past it,
    /// 429 with `Retry-After`. `None` (the default here; the functions and `serve`
    /// set [`DEFAULT_CLIENT_REQUESTS_PER_MINUTE`] unless told otherwise): no budget.
    pub client_budget: Option<Budget>,
}

/// Where the client budgets' counters live in the key-value store.
const CLIENT_BUDGET_NAMESPACE: &str = "client-budget";

/// Requests per minute one app may make unless the plan says otherwise (`serve
/// --client-requests-per-minute`, the template's `ClientRequestsPerMinute`): 50 a
/// second, a quarter of API Gateway's default stage limit, so no single app can take
/// the whole API, while an app syncing thousands of members' histories a day (a few
/// dozen pages each) stays far below it.
pub const DEFAULT_CLIENT_REQUESTS_PER_MINUTE: u32 = 3000;

/// A budget of `n` requests a minute per client; 0 means none.
pub fn requests_per_minute(n: u32) -> Option<Budget> {
    (n > 0).then_some(Budget {
        limit: n,
        window_secs: 60,
    })
}

/// The upper bound on [`ApiConfig::grant_cache_ttl`] (member-auth.md §1.1: ≤ 60 s).
pub const MAX_GRANT_CACHE_TTL: Duration = Duration::from_secs(60);

impl ApiConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        ApiConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            // Blue Button 2.0 pages by 10 (max 50); CARIN apps fetch whole histories, so
            // we give bigger pages and cap them where one response stays small.
            default_count: 20,
            max_count: 100,
            max_body_bytes: 64 * 1024,
            cursor_lifetime: Duration::from_secs(3600),
            oauth: None,
            grant_cache_ttl: MAX_GRANT_CACHE_TTL,
            allow_tokens_without_grant: false,
            client_budget: None,
        }
    }

    /// The configuration for `base_url`, advertising the OAuth endpoints of
    /// `token_issuer`, or of our own authorization server at the base URL when there is
    /// none (how the functions on AWS are configured).
    pub fn with_issuer(base_url: &str, token_issuer: Option<&str>) -> Self {
        let mut config = ApiConfig::new(base_url);
        let issuer = token_issuer.unwrap_or(&config.base_url);
        config.oauth = Some(OAuthUris::for_issuer(issuer));
        config
    }
}

/// The generic handler for one resource type.
pub struct ResourceApi<S> {
    resource_type: ResourceType,
    store: Arc<S>,
    verifier: Arc<TokenVerifier>,
    sealer: Arc<CursorSealer>,
    config: Arc<ApiConfig>,
    grants: Arc<GrantCache>,
}

impl<S> Clone for ResourceApi<S> {
    fn clone(&self) -> Self {
        ResourceApi {
            resource_type: self.resource_type,
            store: Arc::clone(&self.store),
            verifier: Arc::clone(&self.verifier),
            sealer: Arc::clone(&self.sealer),
            config: Arc::clone(&self.config),
            grants: Arc::clone(&self.grants),
        }
    }
}

impl<S: ResourceStore + KeyValueStore> ResourceApi<S> {
    pub fn new(
        resource_type: ResourceType,
        store: Arc<S>,
        verifier: Arc<TokenVerifier>,
        sealer: Arc<CursorSealer>,
        config: Arc<ApiConfig>,
    ) -> Self {
        let grants = Arc::new(GrantCache::new(
            config.grant_cache_ttl.min(MAX_GRANT_CACHE_TTL),
        ));
        ResourceApi {
            resource_type,
            store,
            verifier,
            sealer,
            config,
            grants,
        }
    }

    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The same handler with another configuration (and a fresh grant cache).
    pub fn with_config(mut self, config: Arc<ApiConfig>) -> Self {
        self.grants = Arc::new(GrantCache::new(
            config.grant_cache_ttl.min(MAX_GRANT_CACHE_TTL),
        ));
        self.config = config;
        self
    }

    /// Answers one HTTP request. Never fails: every error becomes an OperationOutcome.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let response =
            match negotiate::negotiate(format_param(&request).as_deref(), request.headers()) {
                Ok(flavour) => match self.respond(&request, flavour).await {
                    Ok(response) => response,
                    Err(error) => error_response(&error, flavour),
                },
                Err(error) => error_response(&error, JsonFlavour::Fhir),
            };
        if request.method() == Method::HEAD {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, Bytes::new());
        }
        response
    }

    async fn respond(
        &self,
        request: &Request<Bytes>,
        flavour: JsonFlavour,
    ) -> Result<Response<Bytes>, ApiError> {
        let route = route::parse(request.method(), request.uri().path())?;
        if route.resource_type() != self.resource_type {
            return Err(ApiError::NotFound(format!(
                "no FHIR endpoint at {}",
                route.resource_type()
            )));
        }
        let principal = self.authenticate(request).await?;
        let outcome = match &route {
            Route::Read { id, .. } => self.read(&principal, id, flavour).await,
            Route::Vread { id, version, .. } => self.vread(&principal, id, version, flavour).await,
            Route::SearchGet { .. } => {
                let query = request.uri().query().unwrap_or_default().as_bytes();
                self.check_size(query.len())?;
                self.search(
                    &principal,
                    params::decode(query)?,
                    request.headers(),
                    flavour,
                )
                .await
            }
            Route::SearchPost { .. } => {
                let params = self.post_search_params(request)?;
                self.search(&principal, params, request.headers(), flavour)
                    .await
            }
        };
        audit(&principal, &route, &outcome);
        outcome
    }

    async fn authenticate(&self, request: &Request<Bytes>) -> Result<Principal, ApiError> {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = self.verifier.verify(header).await.map_err(|error| {
            tracing::info!(target: "audit", resource_type = %self.resource_type, reason = %error, "token rejected");
            ApiError::Unauthorized { www_authenticate: error.www_authenticate() }
        })?;
        self.check_grant(&principal).await?;
        self.spend_budget(&principal).await?;
        Ok(principal)
    }

    /// One request from the client's budget. A store failure lets the request
    /// through (logged): the budget protects the API's capacity, and refusing every
    /// app when the counter table throttles would be the outage it exists to prevent.
    async fn spend_budget(&self, principal: &Principal) -> Result<(), ApiError> {
        let Some(budget) = self.config.client_budget else {
            return Ok(());
        };
        let spent = fhir_store::budget::spend(
            self.store.as_ref(),
            CLIENT_BUDGET_NAMESPACE,
            &principal.client_id,
            budget,
            unix_now(),
        )
        .await;
        match spent {
            Ok(Spend::Allowed) => Ok(()),
            Ok(Spend::Exhausted { retry_after_secs }) => {
                tracing::info!(target: "audit", resource_type = %self.resource_type, client_id = %principal.client_id, retry_after_secs, "client over its request budget");
                Err(ApiError::TooManyRequests {
                    message: format!(
                        "this app has sent too many requests; retry after {retry_after_secs} seconds"
                    ),
                    retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(1),
                })
            }
            Err(error) => {
                tracing::warn!(client_id = %principal.client_id, %error, "request budget not counted");
                Ok(())
            }
        }
    }

    /// A valid signature is not enough: the grant behind the token must still be in
    /// force, so revoking a consent (or disabling the app) stops its unexpired access
    /// tokens within [`ApiConfig::grant_cache_ttl`].
    async fn check_grant(&self, principal: &Principal) -> Result<(), ApiError> {
        let refuse = |reason: &'static str| {
            tracing::info!(target: "audit", resource_type = %self.resource_type, client_id = %principal.client_id, reason, "token rejected");
            ApiError::Unauthorized {
                www_authenticate: smart_auth::AuthError::InvalidSignature.www_authenticate(),
            }
        };
        let Some(grant_id) = principal.grant_id.as_deref() else {
            return if self.config.allow_tokens_without_grant {
                Ok(())
            } else {
                Err(refuse("token names no grant"))
            };
        };
        if let Some(usable) = self.grants.cached(grant_id, principal) {
            return if usable {
                Ok(())
            } else {
                Err(refuse("grant not active"))
            };
        }
        let grant = member_consent::grants::get(self.store.as_ref(), grant_id)
            .await
            .map_err(|e| ApiError::Internal(format!("grant lookup failed: {e}")))?;
        let usable = grant.is_some_and(|g| {
            g.belongs_to(&principal.client_id, &principal.patient) && g.is_usable(unix_now())
        });
        self.grants.remember(grant_id, principal, usable);
        if usable {
            Ok(())
        } else {
            Err(refuse("grant not active"))
        }
    }

    fn check_size(&self, len: usize) -> Result<(), ApiError> {
        if len > self.config.max_body_bytes {
            return Err(ApiError::PayloadTooLarge {
                limit: self.config.max_body_bytes,
            });
        }
        Ok(())
    }

    /// `POST [type]/_search`: form parameters in the body, plus any in the URL.
    fn post_search_params(&self, request: &Request<Bytes>) -> Result<params::Params, ApiError> {
        let body = request.body();
        let query = request.uri().query().unwrap_or_default().as_bytes();
        self.check_size(body.len() + query.len())?;
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if !body.is_empty() && !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(ApiError::UnsupportedMediaType);
        }
        let mut params = params::decode(query)?;
        params.extend(params::decode(body)?);
        Ok(params)
    }

    fn require_scope(
        &self,
        principal: &Principal,
        interaction: Interaction,
    ) -> Result<(), ApiError> {
        if principal.scopes.allows(self.resource_type, interaction) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope {
                resource_type: self.resource_type,
                interaction: match interaction {
                    Interaction::Read => "read",
                    Interaction::Search => "search",
                },
            })
        }
    }

    async fn read(
        &self,
        principal: &Principal,
        id: &str,
        flavour: JsonFlavour,
    ) -> Result<Response<Bytes>, ApiError> {
        self.require_scope(principal, Interaction::Read)?;
        let record = if fhir::is_valid_id(id) {
            ResourceStore::get(self.store.as_ref(), self.resource_type, id).await?
        } else {
            None
        };
        let record = self.visible(principal, record, id)?;
        Ok(resource_response(&record, flavour))
    }

    async fn vread(
        &self,
        principal: &Principal,
        id: &str,
        version: &str,
        flavour: JsonFlavour,
    ) -> Result<Response<Bytes>, ApiError> {
        self.require_scope(principal, Interaction::Read)?;
        let record = match (fhir::is_valid_id(id), version.parse::<u64>()) {
            (true, Ok(version)) => {
                self.store
                    .get_version(self.resource_type, id, version)
                    .await?
            }
            _ => None,
        };
        let label = format!("{id}/_history/{version}");
        let record = self.visible(principal, record, &label)?;
        Ok(resource_response(&record, flavour))
    }

    /// The compartment check for reads: out of compartment looks exactly like missing,
    /// and a tombstone is 410 only to a caller who could have read it.
    fn visible(
        &self,
        principal: &Principal,
        record: Option<ResourceRecord>,
        label: &str,
    ) -> Result<ResourceRecord, ApiError> {
        let not_found =
            || ApiError::NotFound(format!("{}/{}", self.resource_type, printable(label)));
        let record = record.ok_or_else(not_found)?;
        match may_access(
            principal,
            self.resource_type,
            record.index.compartment.as_deref(),
            Interaction::Read,
        ) {
            Access::Allowed if record.deleted => Err(ApiError::Gone(format!(
                "{}/{}",
                self.resource_type, record.id
            ))),
            Access::Allowed => Ok(record),
            Access::NotFound | Access::Forbidden => Err(not_found()),
        }
    }
}

/// Grant-status answers per grant id, each reused for at most the configured TTL.
///
/// One per handler instance (a Lambda execution environment), so a revocation is seen
/// by every instance within the TTL without any cross-instance invalidation.
struct GrantCache {
    ttl: Duration,
    entries: std::sync::Mutex<std::collections::HashMap<String, GrantAnswer>>,
}

struct GrantAnswer {
    client_id: String,
    patient: String,
    usable: bool,
    at: std::time::Instant,
}

/// Above this many entries the cache is cleared rather than grown: a busy instance
/// re-reads some grants, and a flood of made-up grant ids cannot exhaust memory.
const GRANT_CACHE_MAX_ENTRIES: usize = 10_000;

impl GrantCache {
    fn new(ttl: Duration) -> GrantCache {
        GrantCache {
            ttl,
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn cached(&self, grant_id: &str, principal: &Principal) -> Option<bool> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let answer = entries
            .get(grant_id)
            .filter(|a| a.at.elapsed() < self.ttl)?;
        // A token naming someone else's grant is refused, whatever the grant's status.
        Some(
            answer.usable
                && answer.client_id == principal.client_id
                && answer.patient == principal.patient,
        )
    }

    fn remember(&self, grant_id: &str, principal: &Principal, usable: bool) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= GRANT_CACHE_MAX_ENTRIES {
                entries.clear();
            }
            let answer = GrantAnswer {
                client_id: principal.client_id.clone(),
                patient: principal.patient.clone(),
                usable,
                at: std::time::Instant::now(),
            };
            entries.insert(grant_id.to_owned(), answer);
        }
    }
}

fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

pub fn format_param(request: &Request<Bytes>) -> Option<String> {
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "_format")
        .map(|(_, v)| v.into_owned())
        .last()
}

fn resource_response(record: &ResourceRecord, flavour: JsonFlavour) -> Response<Bytes> {
    let mut response = json_response(
        StatusCode::OK,
        Bytes::from(record.body.to_string()),
        flavour,
    );
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", record.version_id)) {
        headers.insert(ETAG, etag);
    }
    if let Some(date) = http_date(&record.last_updated) {
        headers.insert(LAST_MODIFIED, date);
    }
    response
}

fn http_date(instant: &fhir::Instant) -> Option<HeaderValue> {
    let dt = time::OffsetDateTime::from_unix_timestamp(instant.unix_millis() / 1000).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    HeaderValue::from_str(&dt.format(&format).ok()?).ok()
}

pub fn json_response(status: StatusCode, body: Bytes, flavour: JsonFlavour) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(flavour.content_type()),
    );
    // Member data must not sit in shared caches.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The response for an error: its status, an OperationOutcome, and the headers the
/// status calls for.
pub fn error_response(error: &ApiError, flavour: JsonFlavour) -> Response<Bytes> {
    if let ApiError::Internal(detail) = error {
        tracing::error!(detail = %detail, "request failed in the backend");
    }
    let body = Bytes::from(error.outcome().to_json().to_string());
    let mut response = json_response(error.status(), body, flavour);
    let headers = response.headers_mut();
    match error {
        ApiError::Unauthorized { www_authenticate } => {
            if let Ok(value) = HeaderValue::from_str(www_authenticate) {
                headers.insert(http::header::WWW_AUTHENTICATE, value);
            }
        }
        ApiError::InsufficientScope { .. } | ApiError::Forbidden(_) => {
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="fhir", error="insufficient_scope""#),
            );
        }
        ApiError::MethodNotAllowed { allow, .. } => {
            headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::TooManyRequests {
            retry_after_secs, ..
        } => {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(*retry_after_secs),
            );
        }
        _ => {}
    }
    response
}

/// How many resources a successful response carries, set where the response is built
/// when it is not one (a searchset).
#[derive(Debug, Clone, Copy)]
struct ResourcesReturned(usize);

/// One structured line per request: who (client, grant, member), did what, with what
/// result. Resource ids are opaque server ids; no names, dates or parameter values, so
/// the audit trail carries no protected health information.
fn audit(principal: &Principal, route: &Route, outcome: &Result<Response<Bytes>, ApiError>) {
    let status = match outcome {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.status().as_u16(),
    };
    // Resources the response carried: 1 for a read, the entries of a searchset. The
    // usage metrics (crate `usage-metrics`) count accesses from this line.
    let count = match outcome {
        Ok(response) if response.status() == StatusCode::OK => response
            .extensions()
            .get::<ResourcesReturned>()
            .map_or(1, |returned| returned.0),
        _ => 0,
    };
    let (interaction, id) = match route {
        Route::Read { id, .. } => ("read", Some(id.as_str())),
        Route::Vread { id, .. } => ("vread", Some(id.as_str())),
        Route::SearchGet { .. } | Route::SearchPost { .. } => ("search", None),
    };
    tracing::info!(
        target: "audit",
        client_id = %principal.client_id,
        grant_id = principal.grant_id.as_deref().unwrap_or("-"),
        patient = %principal.patient,
        interaction,
        resource_type = %route.resource_type(),
        resource_id = id.unwrap_or("-"),
        status,
        count,
        "fhir access"
    );
}

pub use negotiate::JsonFlavour;
