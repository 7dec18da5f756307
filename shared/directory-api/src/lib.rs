//! The public Provider Directory API (Da Vinci PDEX Plan-Net) at its own base URL
//! (locally `/directory`): read, vread, search (GET and `POST _search`) on the nine
//! Plan-Net profiles, and `/metadata`.
//!
//! * **Public.** No token is needed; an `Authorization` header that is present is
//!   ignored, never checked or rejected (the directory holds no member data).
//! * **Its own store.** The handler is given the directory's store, a separate
//!   instance from the members' (its own redb file; on AWS its own DynamoDB table),
//!   so a directory change can never show in a member's claims, nor the reverse, and
//!   the directory functions' role reaches only the directory table.
//! * **Cacheable.** `Cache-Control: public, max-age=N`, an `ETag` (the version for
//!   reads, a hash of the body for searches and `/metadata`) and `304 Not Modified`
//!   on a matching `If-None-Match`; and, when configured, GET answers kept in memory
//!   while the directory is unchanged (`cache`).
//! * Searches, errors, paging and unknown parameters behave as in the Patient Access
//!   API (`fhir-api`), whose response helpers this crate uses.

pub mod cache;
mod capability;
mod reads;
mod search;

pub use capability::capability_statement;
use directory_load::read_status;
pub use search::{MAX_CANDIDATES, MAX_CHAIN_IDS, MAX_REVINCLUDES};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fhir::ResourceType;
use fhir_api::bundle::{SearchMode, SearchsetWriter};
use fhir_api::route::{self, Route};
use fhir_api::{ApiError, JsonFlavour, error_response, json_response};
use fhir_store::{KeyValueStore, ResourceRecord, ResourceStore};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use smart_auth::{Cursor, CursorBinding, CursorSealer};

pub use cache::ResponseCache;
use reads::{ReadCache, Reads};
use search::Searcher;

/// Where the directory lives under the API's host.
pub const DIRECTORY_PREFIX: &str = "/directory";
/// `Cache-Control: public, max-age` of successful answers, unless configured: short,
/// so a loaded change shows within a minute even through caches.
pub const CACHE_MAX_AGE: Duration = Duration::from_secs(60);
/// Our paging parameter, as in the Patient Access API.
const CURSOR_PARAM: &str = "_cursor";

/// Settings of the directory API.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// The directory's base URL (e.g. `http://localhost:8080/directory`), no trailing slash.
    pub base_url: String,
    pub default_count: usize,
    pub max_count: usize,
    pub max_body_bytes: usize,
    pub cursor_lifetime: Duration,
    /// `Cache-Control: public, max-age` of successful answers.
    pub cache_max_age: Duration,
    /// Bytes of GET answers kept in memory for `cache_max_age` while the directory
    /// is unchanged (`cache` module); 0 keeps none.
    pub response_cache_bytes: u64,
}

impl DirectoryConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        DirectoryConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            default_count: 20,
            max_count: 100,
            max_body_bytes: 64 * 1024,
            cursor_lifetime: Duration::from_secs(3600),
            cache_max_age: CACHE_MAX_AGE,
            response_cache_bytes: 0,
        }
    }

    /// The same, keeping up to `bytes` of answers in memory (what the local server
    /// and the Lambda function run with; tests that load and search again keep none).
    pub fn with_response_cache(mut self, bytes: u64) -> Self {
        self.response_cache_bytes = bytes;
        self
    }
}

/// One page of [`DirectoryApi::find`].
#[derive(Debug)]
pub struct Found {
    pub matches: Vec<Arc<ResourceRecord>>,
    pub included: Vec<Arc<ResourceRecord>>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
}

/// The directory handler.
pub struct DirectoryApi<S> {
    store: Arc<S>,
    sealer: Arc<CursorSealer>,
    config: Arc<DirectoryConfig>,
    cache: Option<Arc<ResponseCache>>,
}

impl<S> Clone for DirectoryApi<S> {
    fn clone(&self) -> Self {
        DirectoryApi {
            store: Arc::clone(&self.store),
            sealer: Arc::clone(&self.sealer),
            config: Arc::clone(&self.config),
            cache: self.cache.clone(),
        }
    }
}

impl<S: ResourceStore + KeyValueStore> DirectoryApi<S> {
    pub fn new(store: Arc<S>, sealer: Arc<CursorSealer>, config: DirectoryConfig) -> Self {
        let cache = (config.response_cache_bytes > 0).then(|| {
            Arc::new(ResponseCache::new(
                config.response_cache_bytes,
                config.cache_max_age,
            ))
        });
        DirectoryApi {
            store,
            sealer,
            config: Arc::new(config),
            cache,
        }
    }

    /// The same API over a cache shared with other instances (the Lambda function
    /// makes one API per request, for the base URL the request came through).
    pub fn with_cache(mut self, cache: Arc<ResponseCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// Whether `path` is the directory's (so the local router sends it here).
    pub fn serves(path: &str) -> bool {
        path == DIRECTORY_PREFIX || path.starts_with("/directory/")
    }

    /// Answers one request whose path starts with [`DIRECTORY_PREFIX`] (or is already
    /// relative to it). Never fails: every error becomes an OperationOutcome.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let flavour = match fhir_api::negotiate::negotiate(
            fhir_api::format_param(&request).as_deref(),
            request.headers(),
        ) {
            Ok(f) => f,
            Err(e) => return error_response(&e, JsonFlavour::Fhir),
        };
        // Boxed: a search's state machine is large (the store's futures, DynamoDB's
        // above all); on the heap it does not weigh on the caller's stack.
        let response = match Box::pin(self.respond_cached(&request, flavour)).await {
            Ok((body, etag)) => self.cacheable(request.headers(), body, etag, flavour),
            Err(error) => error_response(&error, flavour),
        };
        tracing::info!(target: "audit", interaction = "directory", method = %request.method(), status = response.status().as_u16(), "directory access");
        if request.method() == Method::HEAD {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, Bytes::new());
        }
        response
    }

    /// [`Self::respond`], through the response cache for GET and HEAD, with the
    /// store's reads through its read cache.
    async fn respond_cached(
        &self,
        request: &Request<Bytes>,
        flavour: JsonFlavour,
    ) -> Result<(Bytes, Option<String>), ApiError> {
        let Some((cache, generation)) = self.cached_at().await else {
            return self.respond(request, flavour, None).await;
        };
        let reads = Some((cache.reads(), generation));
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return self.respond(request, flavour, reads).await;
        }
        // Answers hold absolute links: the base URL is part of the key.
        let url = format!(
            "{}{}",
            self.config.base_url,
            request.uri().path_and_query().map_or("", |p| p.as_str())
        );
        cache
            .get_or_compute(generation, &url, self.respond(request, flavour, reads))
            .await
    }

    /// The cache and the directory's generation now (one key read), when there is a
    /// cache and the store can say which directory it holds.
    async fn cached_at(&self) -> Option<(&ResponseCache, u64)> {
        let cache = self.cache.as_deref()?;
        let generation = cache.generation(self.store.as_ref()).await?;
        Some((cache, generation))
    }

    fn searcher<'a>(&'a self, cache: Option<(&'a ReadCache, u64)>) -> Searcher<'a, S> {
        Searcher {
            store: Reads {
                store: self.store.as_ref(),
                cache,
            },
        }
    }

    async fn respond(
        &self,
        request: &Request<Bytes>,
        _flavour: JsonFlavour,
        reads: Option<(&ReadCache, u64)>,
    ) -> Result<(Bytes, Option<String>), ApiError> {
        let path = request.uri().path();
        let relative = path.strip_prefix(DIRECTORY_PREFIX).unwrap_or(path);
        if relative == "/metadata" {
            if request.method() != Method::GET && request.method() != Method::HEAD {
                return Err(ApiError::MethodNotAllowed {
                    method: request.method().to_string(),
                    allow: "GET",
                });
            }
            let status = read_status(self.store.as_ref()).await?;
            let body = capability_statement(
                &self.config.base_url,
                env!("CARGO_PKG_VERSION"),
                status.as_ref(),
            );
            return Ok((Bytes::from(body.to_string()), None));
        }
        let route = route::parse(request.method(), relative)?;
        if !ResourceType::PLAN_NET.contains(&route.resource_type()) {
            return Err(ApiError::NotFound(format!(
                "no directory endpoint for {}",
                route.resource_type()
            )));
        }
        match route {
            Route::Read { resource_type, id } => {
                let record = self.read(resource_type, &id, None).await?;
                Ok((
                    Bytes::from(record.body.to_string()),
                    Some(version_etag(&record)),
                ))
            }
            Route::Vread {
                resource_type,
                id,
                version,
            } => {
                let version = version.parse::<u64>().ok();
                let label = format!("{id}/_history/…");
                let record = match version {
                    Some(v) => self.read(resource_type, &id, Some(v)).await?,
                    None => return Err(ApiError::NotFound(format!("{resource_type}/{label}"))),
                };
                Ok((
                    Bytes::from(record.body.to_string()),
                    Some(version_etag(&record)),
                ))
            }
            Route::SearchGet { resource_type } => {
                let query = request.uri().query().unwrap_or_default().as_bytes();
                self.check_size(query.len())?;
                let params = fhir_api::params::decode(query)?;
                Ok((
                    self.search(resource_type, params, request.headers(), reads)
                        .await?,
                    None,
                ))
            }
            Route::SearchPost { resource_type } => {
                let params = self.post_params(request)?;
                Ok((
                    self.search(resource_type, params, request.headers(), reads)
                        .await?,
                    None,
                ))
            }
        }
    }

    async fn read(
        &self,
        resource_type: ResourceType,
        id: &str,
        version: Option<u64>,
    ) -> Result<ResourceRecord, ApiError> {
        let record = if !fhir::is_valid_id(id) {
            None
        } else if let Some(v) = version {
            self.store.get_version(resource_type, id, v).await?
        } else {
            ResourceStore::get(self.store.as_ref(), resource_type, id).await?
        };
        let label: String = id.chars().filter(|c| !c.is_control()).take(100).collect();
        match record {
            None => Err(ApiError::NotFound(format!("{resource_type}/{label}"))),
            Some(r) if r.deleted => Err(ApiError::Gone(format!("{resource_type}/{label}"))),
            Some(r) => Ok(r),
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

    fn post_params(&self, request: &Request<Bytes>) -> Result<fhir_api::params::Params, ApiError> {
        let body = request.body();
        let query = request.uri().query().unwrap_or_default().as_bytes();
        self.check_size(body.len() + query.len())?;
        let media = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !body.is_empty() && media != "application/x-www-form-urlencoded" {
            return Err(ApiError::UnsupportedMediaType);
        }
        let mut params = fhir_api::params::decode(query)?;
        params.extend(fhir_api::params::decode(body)?);
        Ok(params)
    }

    /// Runs one search and writes the searchset Bundle.
    async fn search(
        &self,
        resource_type: ResourceType,
        mut params: fhir_api::params::Params,
        headers: &HeaderMap,
        reads: Option<(&ReadCache, u64)>,
    ) -> Result<Bytes, ApiError> {
        let cursor = fhir_api::params::take(&mut params, CURSOR_PARAM);
        let search =
            plan_net::parse_directory_search(resource_type, &params, fhir_api::handling(headers))?;
        let count = search
            .count
            .map_or(self.config.default_count, |c| c as usize)
            .clamp(1, self.config.max_count);
        let query = search.canonical_query();
        let binding = CursorBinding {
            client_id: "public-directory".into(),
            patient: "-".into(),
            resource_type: resource_type.as_str().to_owned(),
            query: query.clone(),
        };
        let after = match &cursor {
            Some(token) => Some(
                self.sealer
                    .open(token, &binding, std::time::SystemTime::now())
                    .map_err(|_| {
                        ApiError::BadRequest("the paging cursor is invalid or has expired".into())
                    })?
                    .position,
            ),
            None => None,
        };
        let searcher = self.searcher(reads);
        let page = searcher.page(&search, count, after).await?;
        let included = searcher.included(&search, &page.records).await?;
        let self_link = self.link(resource_type, &query, count, cursor.as_deref());
        let next_link = match page.next {
            Some(position) => {
                let sealed = self.sealer.seal(&Cursor {
                    binding,
                    position,
                    expires_at: unix_now() + self.config.cursor_lifetime.as_secs() as i64,
                })?;
                Some(self.link(resource_type, &query, count, Some(&sealed)))
            }
            None => None,
        };
        let total = (cursor.is_none() && next_link.is_none()).then_some(page.records.len());
        let mut writer = SearchsetWriter::new(
            &self.config.base_url,
            &self_link,
            next_link.as_deref(),
            total,
        );
        writer.reserve(
            page.records.len() + included.len(),
            page.records
                .iter()
                .chain(&included)
                .map(|r| r.body.len())
                .sum(),
        );
        for record in &page.records {
            writer.push(record, SearchMode::Match);
        }
        for record in &included {
            writer.push(record, SearchMode::Include);
        }
        Ok(Bytes::from(writer.finish()))
    }

    /// One page of a search as records, for callers that render it themselves (the
    /// "Find a provider" page): the same parsing, access paths, bounds and includes
    /// as [`DirectoryApi::search`], with lenient handling of unknown parameters.
    /// `after` is the `next` of the previous page (an unsealed position: it never
    /// leaves the process).
    pub async fn find(
        &self,
        resource_type: ResourceType,
        params: &[(String, String)],
        count: usize,
        after: Option<String>,
    ) -> Result<Found, ApiError> {
        let search = plan_net::parse_directory_search(
            resource_type,
            params,
            fhir_search::Handling::Lenient,
        )?;
        let cached = self.cached_at().await;
        let searcher = self.searcher(cached.map(|(cache, g)| (cache.reads(), g)));
        let page = searcher
            .page(&search, count.clamp(1, self.config.max_count), after)
            .await?;
        let included = searcher.included(&search, &page.records).await?;
        Ok(Found {
            matches: page.records,
            included,
            next: page.next,
        })
    }

    fn link(
        &self,
        resource_type: ResourceType,
        query: &str,
        count: usize,
        cursor: Option<&str>,
    ) -> String {
        let mut link = format!("{}/{resource_type}?", self.config.base_url);
        if !query.is_empty() {
            link.push_str(query);
            link.push('&');
        }
        link.push_str(&format!("_count={count}"));
        if let Some(cursor) = cursor {
            link.push_str(&format!("&{CURSOR_PARAM}={cursor}"));
        }
        link
    }

    /// 200 with caching headers, or 304 when the client's copy is current.
    fn cacheable(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        etag: Option<String>,
        flavour: JsonFlavour,
    ) -> Response<Bytes> {
        let etag = etag.unwrap_or_else(|| {
            let digest = Sha256::digest(&body);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("W/\"{hex}\"")
        });
        let not_modified = headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || weak_eq(tag, &etag));
        let mut response = if not_modified {
            let mut r = Response::new(Bytes::new());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            json_response(StatusCode::OK, body, flavour)
        };
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "public, max-age={}",
            self.config.cache_max_age.as_secs()
        )) {
            h.insert(CACHE_CONTROL, v);
        }
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(ETAG, v);
        }
        response
    }
}

/// `If-None-Match` compares weakly (RFC 9110 §13.1.2).
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn version_etag(record: &ResourceRecord) -> String {
    format!("W/\"{}\"", record.version_id)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
