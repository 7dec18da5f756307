//! The Provider Access HTTP surface for backend clients, over plain `http` types:
//!
//! | route | what |
//! |---|---|
//! | `GET /Group/{id}` | the caller's attribution Group (others: 404) |
//! | `GET /Group?identifier=…` | search the caller's Groups by NPI/TIN |
//! | `GET`/`POST /Group/{id}/$export` | kick-off (`Prefer: respond-async`) |
//! | `GET`/`POST /Patient/$export` | every member, for a client allowed all (Payer-to-Payer) |
//! | `GET /bulk-status/{job}` | 202 + `X-Progress` while running, 200 + manifest |
//! | `DELETE /bulk-status/{job}` | cancel, delete files |
//! | `GET /bulk-files/{job}/{file}` | one NDJSON file, for the client that asked |
//!
//! Every request needs a backend token (`token_use` = `system`); a member token is
//! 401 here. Everything is audited with client, job and status, never member data.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fhir::clock::unix_now;
use fhir::{IssueCode, OperationOutcome};
use fhir_api::{ApiError, JsonFlavour, error_response};
use fhir_store::{KeyValueStore, ResourceStore};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use smart_auth::TokenVerifier;

use backend_auth::{SystemPrincipal, verify_system};

use crate::files::{Download, ExportFiles};
use crate::job::{self, Job, JobStatus, Source, WorkItem, WorkQueue};
use crate::request::{self, ExportRequest};

pub const STATUS_PREFIX: &str = "/bulk-status/";
pub const FILES_PREFIX: &str = "/bulk-files/";
/// Every member's data, for a backend client registered with `all_members`.
pub const PATIENT_EXPORT: &str = "/Patient/$export";
/// Seconds a client is asked to wait between status polls.
pub const RETRY_AFTER_SECS: u64 = 2;
/// Groups listed by a search without `identifier`, at most.
const MAX_GROUPS: usize = 100;

/// Whether the path is one of ours (the local runner and API Gateway route on this).
pub fn serves_path(path: &str) -> bool {
    path == "/Group"
        || path == PATIENT_EXPORT
        || path.starts_with("/Group/")
        || path.starts_with(STATUS_PREFIX)
        || path.starts_with(FILES_PREFIX)
}

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// The FHIR base URL (no trailing slash).
    pub base_url: String,
    /// How long a job's files and manifest are kept (the template's retention).
    pub retention: Duration,
}

/// The handler over its ports.
pub struct ProviderAccessApi<S> {
    store: Arc<S>,
    verifier: Arc<TokenVerifier>,
    files: Arc<dyn ExportFiles>,
    queue: Arc<dyn WorkQueue>,
    config: BulkConfig,
}

type Reply = Result<Response<Bytes>, ApiError>;

impl<S: ResourceStore + KeyValueStore + 'static> ProviderAccessApi<S> {
    pub fn new(
        store: Arc<S>,
        verifier: Arc<TokenVerifier>,
        files: Arc<dyn ExportFiles>,
        queue: Arc<dyn WorkQueue>,
        config: BulkConfig,
    ) -> Self {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        ProviderAccessApi {
            store,
            verifier,
            files,
            queue,
            config: BulkConfig { base_url, ..config },
        }
    }

    /// Answers one request; never fails (errors are OperationOutcomes).
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = match verify_system(&self.verifier, header).await {
            Ok(p) => p,
            Err(error) => {
                tracing::info!(target: "audit", reason = %error, event = "bulk.token_rejected", "backend token rejected");
                return error_response(
                    &ApiError::Unauthorized {
                        www_authenticate: error.www_authenticate(),
                    },
                    JsonFlavour::Fhir,
                );
            }
        };
        let path = request.uri().path().to_owned();
        let result = self.route(&principal, &request, &path).await;
        let status = match &result {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.status().as_u16(),
        };
        tracing::info!(target: "audit", client_id = %principal.client_id, token_id = %principal.token_id, method = %request.method(), route = route_name(&path), status, event = "bulk.request", "provider access request");
        result.unwrap_or_else(|error| error_response(&error, JsonFlavour::Fhir))
    }

    async fn route(&self, who: &SystemPrincipal, request: &Request<Bytes>, path: &str) -> Reply {
        let method = request.method();
        if let Some(job_id) = path.strip_prefix(STATUS_PREFIX) {
            return match *method {
                Method::GET => self.status(who, job_id).await,
                Method::DELETE => self.cancel(who, job_id).await,
                _ => Err(not_allowed(method, "GET, DELETE")),
            };
        }
        if let Some(rest) = path.strip_prefix(FILES_PREFIX) {
            return match *method {
                Method::GET => self.download(who, rest).await,
                _ => Err(not_allowed(method, "GET")),
            };
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.clone(), segments.as_slice()) {
            (Method::GET, ["Group"]) => self.search(who, request).await,
            (Method::GET, ["Group", id]) => self.read(who, id).await,
            (Method::GET | Method::POST, ["Group", id, "$export"]) => {
                self.kick_off(who, request, id).await
            }
            (Method::GET | Method::POST, ["Patient", "$export"]) => {
                self.kick_off_all(who, request).await
            }
            (_, ["Patient", "$export"]) => Err(not_allowed(method, "GET, POST")),
            (_, ["Group", ..]) => Err(not_allowed(method, "GET")),
            _ => Err(ApiError::NotFound(format!("no endpoint at {path}"))),
        }
    }

    async fn visible_group(
        &self,
        who: &SystemPrincipal,
        id: &str,
    ) -> Result<attribution::GroupHeader, ApiError> {
        let not_found = || ApiError::NotFound(format!("Group/{id}"));
        let header = attribution::group::header(self.store.as_ref(), id)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        // Another provider's Group is indistinguishable from a missing one.
        if !header.visible_to(&who.provider_npis, &who.provider_tins) {
            return Err(not_found());
        }
        Ok(header)
    }

    async fn read(&self, who: &SystemPrincipal, id: &str) -> Reply {
        require(who, "Group", true)?;
        let header = self.visible_group(who, id).await?;
        let members = attribution::group::members(self.store.as_ref(), &header)
            .await
            .map_err(internal)?;
        Ok(fhir_json(StatusCode::OK, &header.to_resource(&members)))
    }

    async fn search(&self, who: &SystemPrincipal, request: &Request<Bytes>) -> Reply {
        require(who, "Group", false)?;
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let mut wanted: Option<Vec<(String, String)>> = None;
        for (name, value) in &pairs {
            match name.as_str() {
                "identifier" => {
                    let (system, code) = value.split_once('|').unwrap_or(("", value.as_str()));
                    wanted
                        .get_or_insert_with(Vec::new)
                        .push((system.to_owned(), code.to_owned()));
                }
                "_summary" if value == "true" => {}
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "the search parameter {other} is not supported on Group"
                    )));
                }
            }
        }
        let mut headers = attribution::group::visible_groups(
            self.store.as_ref(),
            &who.provider_npis,
            &who.provider_tins,
        )
        .await
        .map_err(internal)?;
        if let Some(wanted) = &wanted {
            headers.retain(|h| {
                wanted.iter().any(|(system, code)| {
                    let npi = h.provider.npi.as_deref() == Some(code.as_str())
                        && (system.is_empty() || system == attribution::group::NPI_SYSTEM);
                    let tin = h.provider.tin.as_deref() == Some(code.as_str())
                        && (system.is_empty()
                            || attribution::group::TIN_SYSTEMS_ACCEPTED.contains(&system.as_str()));
                    npi || tin
                })
            });
        }
        headers.truncate(MAX_GROUPS);
        // A payer's match Groups (Payer-to-Payer, PDex: the requester SHALL be able to
        // search the Groups associated with it, and only those).
        let matched = if who.payer && wanted.is_none() {
            crate::members::of_client(self.store.as_ref(), &who.client_id)
                .await
                .map_err(internal)?
        } else {
            Vec::new()
        };
        let mut entries = Vec::new();
        for group in &matched {
            entries.push(json!({
                "fullUrl": format!("{}/Group/{}", self.config.base_url, group.id),
                "resource": crate::members::summary(group),
                "search": {"mode": "match"}
            }));
        }
        for header in &headers {
            // Search results carry the Group without its member list (`_summary`
            // style): a list can be huge; read the Group to get it.
            entries.push(json!({
                "fullUrl": format!("{}/Group/{}", self.config.base_url, header.id),
                "resource": header.to_resource(&[]),
                "search": {"mode": "match"}
            }));
        }
        let self_url = match request.uri().query() {
            Some(q) => format!("{}/Group?{q}", self.config.base_url),
            None => format!("{}/Group", self.config.base_url),
        };
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "link": [{"relation": "self", "url": self_url}],
            "entry": entries,
        });
        Ok(fhir_json(StatusCode::OK, &bundle))
    }

    /// `Prefer: respond-async`, the parameters, and a scope for every type asked for.
    fn export_request(
        who: &SystemPrincipal,
        request: &Request<Bytes>,
    ) -> Result<ExportRequest, ApiError> {
        require_respond_async(request)?;
        let export = parse_request(request)?;
        for t in &export.types {
            require(who, t.as_str(), true)?;
        }
        Ok(export)
    }

    async fn kick_off(&self, who: &SystemPrincipal, request: &Request<Bytes>, id: &str) -> Reply {
        let export = Self::export_request(who, request)?;
        let header = self.visible_group(who, id).await?;
        let source = Source::Group {
            group_id: header.id.clone(),
            version: header.version,
        };
        self.start(who, request, export, source, header.chunks, &header.id)
            .await
    }

    /// `/Patient/$export`: only a client registered for every member (Payer-to-Payer);
    /// one slice per member-roster shard.
    async fn kick_off_all(&self, who: &SystemPrincipal, request: &Request<Bytes>) -> Reply {
        let export = Self::export_request(who, request)?;
        if !who.all_members {
            return Err(ApiError::Forbidden(
                "this client is not registered for an export of every member".into(),
            ));
        }
        self.start(
            who,
            request,
            export,
            Source::Roster {
                page_size: crate::worker::ROSTER_PAGE as u32,
            },
            fhir_search::roster::SHARDS,
            "all-members",
        )
        .await
    }

    /// Records the job, queues its slices, answers 202 with the status URL.
    async fn start(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
        export: ExportRequest,
        source: Source,
        slices: u32,
        audit_source: &str,
    ) -> Reply {
        let kick_off = KickOff {
            job_id: None,
            export,
            source,
            slices,
            audit_source,
        };
        launch(
            self.store.as_ref(),
            self.queue.as_ref(),
            &self.config,
            who,
            request,
            kick_off,
        )
        .await
    }

    async fn own_job(&self, who: &SystemPrincipal, job_id: &str) -> Result<Job, ApiError> {
        match job::get(self.store.as_ref(), job_id)
            .await
            .map_err(internal)?
        {
            // Another client's job is indistinguishable from none; so is a
            // `$bulk-member-match` job, whose answer is at its own status URL.
            Some((job, _))
                if job.client_id == who.client_id
                    && job.status != JobStatus::Cancelled
                    && !matches!(job.source, Source::BulkMemberMatch { .. }) =>
            {
                Ok(job)
            }
            _ => Err(ApiError::NotFound(format!("export job {job_id}"))),
        }
    }

    async fn status(&self, who: &SystemPrincipal, job_id: &str) -> Reply {
        let job = self.own_job(who, job_id).await?;
        match job.status {
            JobStatus::Running => {
                let done = job::progress(self.store.as_ref(), &job)
                    .await
                    .map_err(internal)?;
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = StatusCode::ACCEPTED;
                set(
                    &mut response,
                    "x-progress",
                    &format!("{done} of {} slices", job.slices),
                );
                set(
                    &mut response,
                    http::header::RETRY_AFTER,
                    &RETRY_AFTER_SECS.to_string(),
                );
                Ok(response)
            }
            JobStatus::Completed => {
                let manifest = job::manifest(
                    &job,
                    &format!(
                        "{}{}",
                        self.config.base_url,
                        FILES_PREFIX.trim_end_matches('/')
                    ),
                );
                let mut response = Response::new(Bytes::from(manifest.to_string()));
                set(
                    &mut response,
                    http::header::CONTENT_TYPE,
                    "application/json",
                );
                set(&mut response, http::header::CACHE_CONTROL, "no-store");
                Ok(response)
            }
            JobStatus::Failed => {
                let outcome = OperationOutcome::error(
                    IssueCode::Exception,
                    job.failure.unwrap_or_else(|| "the export failed".into()),
                );
                Ok(fhir_json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &outcome.to_json(),
                ))
            }
            JobStatus::Cancelled => Err(ApiError::NotFound(format!("export job {job_id}"))),
        }
    }

    async fn cancel(&self, who: &SystemPrincipal, job_id: &str) -> Reply {
        let job = self.own_job(who, job_id).await?;
        job::update(self.store.as_ref(), &job.id, |j| {
            j.status = JobStatus::Cancelled;
            j.output.clear();
            true
        })
        .await
        .map_err(internal)?;
        self.files.delete_job(&job.id).await.map_err(internal)?;
        tracing::info!(target: "audit", job_id = %job.id, client_id = %who.client_id, event = "bulk_export.cancelled", "bulk export cancelled");
        let outcome = OperationOutcome::new(
            fhir::Severity::Information,
            IssueCode::Informational,
            "the export was cancelled and its files deleted",
        );
        Ok(fhir_json(StatusCode::ACCEPTED, &outcome.to_json()))
    }

    async fn download(&self, who: &SystemPrincipal, rest: &str) -> Reply {
        let (job_id, _) = rest
            .split_once('/')
            .ok_or_else(|| ApiError::NotFound("file".into()))?;
        let job = self.own_job(who, job_id).await?;
        // Only files the manifest lists: the key is never taken from the URL as such.
        let Some(file) = job
            .output
            .iter()
            .chain(&job.error_files)
            .find(|f| f.key == rest)
        else {
            return Err(ApiError::NotFound("file".into()));
        };
        let download = self.files.download(&file.key).await.map_err(internal)?;
        tracing::info!(target: "audit", job_id = %job.id, client_id = %who.client_id, file = %file.key, event = "bulk_export.downloaded", "bulk file downloaded");
        match download {
            Some(Download::Body(body)) => {
                let mut response = Response::new(body);
                set(
                    &mut response,
                    http::header::CONTENT_TYPE,
                    "application/fhir+ndjson",
                );
                set(&mut response, http::header::CACHE_CONTROL, "no-store");
                Ok(response)
            }
            Some(Download::Redirect(url)) => {
                let mut response = Response::new(Bytes::new());
                *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                set(&mut response, http::header::LOCATION, &url);
                set(&mut response, http::header::CACHE_CONTROL, "no-store");
                Ok(response)
            }
            None => Err(ApiError::NotFound("file".into())),
        }
    }
}

/// What one kick-off starts.
pub struct KickOff<'a> {
    /// The job's id, when the caller needed it before the job existed; else a new one.
    pub job_id: Option<String>,
    pub export: ExportRequest,
    pub source: Source,
    pub slices: u32,
    /// What the audit line names as the source (a Group id, `all-members`).
    pub audit_source: &'a str,
}

/// Records a job, queues its slices, and answers 202 with the status URL: the one
/// kick-off of every export (Provider Access's and Payer-to-Payer's
/// `$davinci-data-export`), whose status, files and cancel are then this API's.
pub async fn launch<S, Q>(
    store: &S,
    queue: &Q,
    config: &BulkConfig,
    who: &SystemPrincipal,
    request: &Request<Bytes>,
    kick_off: KickOff<'_>,
) -> Reply
where
    S: KeyValueStore + ?Sized,
    Q: WorkQueue + ?Sized,
{
    let KickOff {
        job_id,
        export,
        source,
        slices,
        audit_source,
    } = kick_off;
    let base_url = config.base_url.trim_end_matches('/');
    let now = unix_now();
    let retention = i64::try_from(config.retention.as_secs()).unwrap_or(86_400);
    let job = Job {
        id: match job_id {
            Some(id) => id,
            None => job::new_job_id().map_err(internal)?,
        },
        client_id: who.client_id.clone(),
        source,
        request: export,
        request_url: format!(
            "{}{}",
            base_url,
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or_default()
        ),
        transaction_time: fhir::Instant::now().to_string(),
        slices,
        status: JobStatus::Running,
        output: Vec::new(),
        error_files: Vec::new(),
        failure: None,
        expires_at: now + retention,
    };
    job::create(store, &job).await.map_err(internal)?;
    if job.slices == 0 {
        job::finish(store, &job).await.map_err(internal)?;
    } else {
        let items = (0..job.slices)
            .map(|slice| WorkItem::new(job.id.clone(), slice))
            .collect();
        if let Err(error) = queue.enqueue(items).await {
            if let Err(fail) = job::fail(store, &job.id, "the export could not be queued").await {
                tracing::warn!(job_id = %job.id, error = %fail, "could not mark the export failed");
            }
            return Err(internal(error));
        }
    }
    tracing::info!(target: "audit", job_id = %job.id, client_id = %who.client_id, source = %audit_source, slices = job.slices, event = "bulk_export.started", "bulk export started");
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::ACCEPTED;
    set(
        &mut response,
        http::header::CONTENT_LOCATION,
        &format!("{}{STATUS_PREFIX}{}", base_url, job.id),
    );
    Ok(response)
}

/// 400 unless the request asks `Prefer: respond-async` (Bulk Data kick-off).
pub fn require_respond_async(request: &Request<Bytes>) -> Result<(), ApiError> {
    let prefer = request
        .headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "respond-async"));
    if prefer {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "a bulk export needs the header Prefer: respond-async".into(),
        ))
    }
}

/// The kick-off parameters of a GET query or a POST `Parameters` body.
pub fn parse_request(request: &Request<Bytes>) -> Result<ExportRequest, ApiError> {
    let parsed = if request.method() == Method::POST && !request.body().is_empty() {
        let body: Value = serde_json::from_slice(request.body())
            .map_err(|_| ApiError::BadRequest("the body must be a Parameters resource".into()))?;
        request::from_parameters(&body)
    } else {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        request::from_query(&pairs)
    };
    parsed.map_err(ApiError::BadRequest)
}

/// 403 unless the token's scopes allow reading (`read`) or searching `resource_type`.
pub fn require(who: &SystemPrincipal, resource_type: &str, read: bool) -> Result<(), ApiError> {
    if who.scopes.allows(resource_type, read) {
        return Ok(());
    }
    let interaction = if read { "read" } else { "search" };
    Err(match resource_type.parse::<fhir::ResourceType>() {
        Ok(resource_type) => ApiError::InsufficientScope {
            resource_type,
            interaction,
        },
        Err(_) => ApiError::Forbidden(format!(
            "the access token's scopes do not allow {interaction} of {resource_type}"
        )),
    })
}

fn not_allowed(method: &Method, allow: &'static str) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow,
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(error.to_string())
}

fn set(response: &mut Response<Bytes>, name: impl http::header::IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn fhir_json(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    set(
        &mut response,
        http::header::CONTENT_TYPE,
        JsonFlavour::Fhir.content_type(),
    );
    set(&mut response, http::header::CACHE_CONTROL, "no-store");
    response
}

/// A route label for the audit log (no ids that could be member data).
fn route_name(path: &str) -> &'static str {
    if path.starts_with(STATUS_PREFIX) {
        "status"
    } else if path.starts_with(FILES_PREFIX) {
        "file"
    } else if path.ends_with("/$export") {
        "export"
    } else {
        "group"
    }
}
