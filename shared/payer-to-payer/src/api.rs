//! `POST /Patient/$member-match` (HRex 1.x, type level) over plain `http` types.
//!
//! In order, each step answering before the next runs:
//! 1. a backend token (`token_use` = `system`), else 401;
//! 2. a client registered as a payer (`apps register --backend --payer`), else 403;
//! 3. the client's failed-match budget ([`crate::budget`]), else 429 + `Retry-After`;
//! 4. a `Parameters` body with one `MemberPatient`, one `CoverageToMatch`, one
//!    `Consent` (and optionally `CoverageToLink`), else 400;
//! 5. the Consent ([`crate::consent`]), else 422 naming what is wrong with it;
//! 6. the match rule ([`crate::matching`]) and the member's Payer-to-Payer opt-in:
//!    no match, several matches, or not opted in all answer the **same** 422 text,
//!    so an answer never tells whether someone is a member.
//!
//! Every failure from step 5 on counts against the client's budget. Each call is
//! audited with the client, token id, outcome and status, never member data.
//!
//! A match also lets the same client read that member with
//! `GET /Patient/{id}/$everything` ([`crate::everything`]) for a week, within the
//! consent's policy, while the member stays opted in.
//!
//! `GET`/`POST /Group/{id}/$davinci-data-export` ([`crate::data_export`]) exports a
//! match Group of the calling client (`bulk_export::members`) as a Bulk Data job on
//! the `$export` machinery: 202 and the `/bulk-status/{job}` URL, whose status, files
//! and cancel the bulk API serves.

use std::sync::Arc;
use std::time::Duration;

use bulk_export::WorkQueue;
use bulk_export::api::{BulkConfig, KickOff};
use bulk_export::job::Source;
use bytes::Bytes;
use fhir_api::{ApiError, JsonFlavour, error_response};
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use smart_auth::TokenVerifier;

use backend_auth::{SystemPrincipal, verify_system};

use crate::budget::FailureBudget;
use crate::consent::{self, ConsentPolicy};
use crate::matching::{self, InputError, MatchOutcome, MatchRequest};
use crate::sensitive::SensitivePolicy;

pub const MEMBER_MATCH_PATH: &str = "/Patient/$member-match";

/// The one answer for no match, several matches and a member who has not opted in.
pub const NO_UNIQUE_MEMBER: &str = "no unique member could be matched, with a consent this plan can honour, from the demographics, coverage and consent given";

/// Whether the path is ours (the local runner and `bulk-api` route on this, before
/// the bulk API's `/Group/...`).
pub fn serves_path(path: &str) -> bool {
    path == MEMBER_MATCH_PATH
        || path == crate::bulk_match::PATH
        || path.starts_with(crate::bulk_match::STATUS_PREFIX)
        || crate::everything::patient_of(path).is_some()
        || crate::data_export::group_of(path).is_some()
        || match_group_of(path).is_some()
}

/// The id of a `/Group/{id}` path that names a match Group (`p2p-…`); other Groups
/// are the bulk API's (attribution).
fn match_group_of(path: &str) -> Option<&str> {
    path.strip_prefix("/Group/")
        .filter(|id| bulk_export::members::is_match_group_id(id))
}

/// Settings.
#[derive(Debug, Clone)]
pub struct MemberMatchConfig {
    pub budget: FailureBudget,
    /// What a `#sensitive` consent keeps back.
    pub sensitive: SensitivePolicy,
    /// The FHIR base URL (no trailing slash), for `fullUrl`s and status URLs.
    pub base_url: String,
    /// How long an export's files and manifest are kept (as the bulk API's).
    pub retention: Duration,
}

impl Default for MemberMatchConfig {
    fn default() -> Self {
        MemberMatchConfig {
            budget: FailureBudget::default(),
            sensitive: SensitivePolicy::default(),
            base_url: String::new(),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

impl MemberMatchConfig {
    /// The plan's answering rules: each requesting plan's failed-match budget per hour
    /// and the sensitive-code list a `#sensitive` consent keeps back.
    pub fn with_rules(failures_per_hour: i64, sensitive: SensitivePolicy) -> Self {
        MemberMatchConfig {
            budget: FailureBudget {
                per_hour: failures_per_hour,
            },
            sensitive,
            ..MemberMatchConfig::default()
        }
    }
}

/// The handler over the store, the backend-token verifier and the export work queue.
pub struct MemberMatchApi<S> {
    store: Arc<S>,
    verifier: Arc<TokenVerifier>,
    queue: Arc<dyn WorkQueue>,
    config: MemberMatchConfig,
}

/// How a call ended, for the audit log and the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Matched,
    Refused(&'static str),
}

impl<S: ResourceStore + KeyValueStore + 'static> MemberMatchApi<S> {
    pub fn new(
        store: Arc<S>,
        verifier: Arc<TokenVerifier>,
        queue: Arc<dyn WorkQueue>,
        config: MemberMatchConfig,
    ) -> Self {
        MemberMatchApi {
            store,
            verifier,
            queue,
            config,
        }
    }

    /// Answers one request; never fails (errors are OperationOutcomes).
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let who = match verify_system(&self.verifier, header).await {
            Ok(p) => p,
            Err(error) => {
                tracing::info!(target: "audit", reason = %error, event = "member_match.token_rejected", "backend token rejected");
                return error_response(
                    &ApiError::Unauthorized {
                        www_authenticate: error.www_authenticate(),
                    },
                    JsonFlavour::Fhir,
                );
            }
        };
        if let Some(patient_id) = crate::everything::patient_of(request.uri().path()) {
            let result = self.everything(&who, &request, patient_id).await;
            let status = status_of(&result);
            // The member whose data went to another plan, when it did (the audit
            // archive keeps the member id: who received whose data).
            let patient = if status == 200 { patient_id } else { "" };
            tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, patient, status, event = "member_match.everything", "payer-to-payer everything");
            return answer_of(result);
        }
        if let Some(group_id) = match_group_of(request.uri().path()) {
            let result = self.read_match_group(&who, &request, group_id).await;
            let status = status_of(&result);
            tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, group_id, status, event = "member_match.group_read", "payer-to-payer match group read");
            return answer_of(result);
        }
        if let Some(group_id) = crate::data_export::group_of(request.uri().path()) {
            let result = self.data_export(&who, &request, group_id).await;
            let status = status_of(&result);
            tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, group_id, status, event = "member_match.data_export", "payer-to-payer bulk export");
            return answer_of(result);
        }
        if request.uri().path() == crate::bulk_match::PATH
            || request
                .uri()
                .path()
                .starts_with(crate::bulk_match::STATUS_PREFIX)
        {
            let result = self.bulk_match(&who, &request).await;
            let status = status_of(&result);
            tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, method = %request.method(), status, event = "member_match.bulk", "payer-to-payer bulk member match");
            return answer_of(result);
        }
        let (result, outcome) = self.answer(&who, &request).await;
        let status = status_of(&result);
        let outcome = match outcome {
            Some(Outcome::Matched) => "matched",
            Some(Outcome::Refused(why)) => why,
            None => "not-attempted",
        };
        tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, outcome, status, event = "member_match.request", "member match");
        answer_of(result)
    }

    async fn answer(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
    ) -> (Result<Response<Bytes>, ApiError>, Option<Outcome>) {
        if let Err(error) = require_method(request, &[Method::POST], "POST")
            .and_then(|()| require_payer(who, "$member-match"))
        {
            return (Err(error), None);
        }
        let now = fhir::clock::unix_now();
        match self
            .config
            .budget
            .exhausted(self.store.as_ref(), &who.client_id, now)
            .await
        {
            Ok(None) => {}
            Ok(Some(retry_after_secs)) => {
                let error = ApiError::TooManyRequests {
                    message:
                        "too many unsuccessful member matches from this client; try again later"
                            .into(),
                    retry_after_secs,
                };
                return (Err(error), Some(Outcome::Refused("throttled")));
            }
            Err(e) => return (Err(e.into()), None),
        }
        let parsed = match parse(request.body()) {
            Ok(parsed) => parsed,
            Err(e) => return (Err(ApiError::BadRequest(e.to_string())), None),
        };
        let result = self.decide(&parsed, now).await;
        let outcome = match &result {
            Ok(_) => Outcome::Matched,
            Err(Refusal::Consent(_)) => Outcome::Refused("consent"),
            Err(Refusal::NoUniqueMember(why)) => Outcome::Refused(why),
            Err(Refusal::Store(e)) => return (Err(ApiError::Internal(e.clone())), None),
        };
        if let Outcome::Refused(_) = outcome
            && let Err(e) = self
                .config
                .budget
                .record_failure(self.store.as_ref(), &who.client_id, now)
                .await
        {
            return (Err(e.into()), Some(outcome));
        }
        if let Ok((patient_id, _, policy)) = &result
            && let Err(e) = crate::everything::record_link(
                self.store.as_ref(),
                &who.client_id,
                patient_id,
                *policy,
                now,
            )
            .await
        {
            return (Err(e.into()), Some(outcome));
        }
        let response = match result {
            Ok((patient_id, member_identifier, policy)) => {
                tracing::info!(target: "audit", client_id = %who.client_id, policy = policy.code(), event = "member_match.matched", "member matched");
                Ok(parameters_response(&patient_id, member_identifier))
            }
            Err(Refusal::Consent(why)) => Err(ApiError::Unprocessable(format!(
                "the consent cannot be honoured: {why}"
            ))),
            Err(_) => Err(ApiError::Unprocessable(NO_UNIQUE_MEMBER.into())),
        };
        (response, Some(outcome))
    }

    /// `GET /Patient/{id}/$everything`: 404 unless this client matched the member
    /// and the member is still opted in.
    async fn everything(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
        patient_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        require_method(request, &[Method::GET], "GET")?;
        require_payer(who, "$everything")?;
        let unknown = || ApiError::NotFound(format!("Patient/{patient_id}"));
        let policy = crate::everything::link(self.store.as_ref(), &who.client_id, patient_id)
            .await?
            .ok_or_else(unknown)?;
        let opted_in = member_consent::payer_to_payer::is_opted_in(self.store.as_ref(), patient_id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if !opted_in {
            return Err(unknown());
        }
        let page = crate::everything::Page::from_query(request.uri().query())
            .map_err(ApiError::BadRequest)?;
        let bundle = crate::everything::bundle(
            self.store.as_ref(),
            patient_id,
            policy,
            &self.config.sensitive,
            self.config.base_url.trim_end_matches('/'),
            fhir::clock::unix_now(),
            &page,
        )
        .await?;
        Ok(fhir_response(&bundle))
    }

    /// `POST /Group/$bulk-member-match` (kick-off) and `GET
    /// /Group/$bulk-member-match/{job}` (status, then the three Groups).
    async fn bulk_match(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
    ) -> Result<Response<Bytes>, ApiError> {
        require_payer(who, "$bulk-member-match")?;
        let path = request.uri().path();
        if let Some(job_id) = path.strip_prefix(crate::bulk_match::STATUS_PREFIX) {
            require_method(request, &[Method::GET], "GET")?;
            return self.bulk_match_status(who, job_id).await;
        }
        require_method(request, &[Method::POST], "POST")?;
        let now = fhir::clock::unix_now();
        let internal = |e: bulk_export::ExportError| ApiError::Internal(e.to_string());
        if let Some(retry_after_secs) = self
            .config
            .budget
            .exhausted(self.store.as_ref(), &who.client_id, now)
            .await?
        {
            return Err(ApiError::TooManyRequests {
                message: "too many unsuccessful member matches from this client; try again later"
                    .into(),
                retry_after_secs,
            });
        }
        let members = crate::bulk_match::parse(request.body())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let chunks = crate::bulk_match::chunks(&members);
        let job_id = bulk_export::job::new_job_id().map_err(internal)?;
        let retention = i64::try_from(self.config.retention.as_secs()).unwrap_or(86_400);
        // The members are stored before the job is queued (a chunk never waits for
        // them), and outlive the job a little (its answer reads them).
        crate::bulk_match::store_chunks(
            self.store.as_ref(),
            &job_id,
            &chunks,
            now.saturating_add(retention).saturating_add(3600),
        )
        .await
        .map_err(internal)?;
        let config = BulkConfig {
            base_url: self.config.base_url.trim_end_matches('/').to_owned(),
            retention: self.config.retention,
        };
        let kick_off = KickOff {
            job_id: Some(job_id.clone()),
            export: bulk_export::request::ExportRequest {
                types: Vec::new(),
                since: None,
                type_filters: Vec::new(),
                provenance: false,
            },
            source: Source::BulkMemberMatch {
                members: u32::try_from(members.len()).unwrap_or(u32::MAX),
            },
            slices: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
            audit_source: "bulk-member-match",
        };
        let mut response = bulk_export::api::launch(
            self.store.as_ref(),
            self.queue.as_ref(),
            &config,
            who,
            request,
            kick_off,
        )
        .await?;
        // Polled here, not at /bulk-status: the answer is three Groups, not a manifest.
        let status_url = format!(
            "{}{}{job_id}",
            config.base_url,
            crate::bulk_match::STATUS_PREFIX
        );
        if let Ok(value) = http::HeaderValue::from_str(&status_url) {
            response
                .headers_mut()
                .insert(http::header::CONTENT_LOCATION, value);
        }
        Ok(response)
    }

    /// `GET /Group/{id}` of a match Group of this client (another's is 404).
    async fn read_match_group(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
        group_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        require_method(request, &[Method::GET], "GET")?;
        require_payer(who, "Group read")?;
        let internal = |e: bulk_export::ExportError| ApiError::Internal(e.to_string());
        let group = bulk_export::members::get(self.store.as_ref(), group_id)
            .await
            .map_err(internal)?
            .filter(|g| g.client_id == who.client_id)
            .ok_or_else(|| ApiError::NotFound(format!("Group/{group_id}")))?;
        let resource = crate::bulk_match::match_group_resource(self.store.as_ref(), &group)
            .await
            .map_err(internal)?;
        Ok(fhir_response(&resource))
    }

    async fn bulk_match_status(
        &self,
        who: &SystemPrincipal,
        job_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        let internal = |e: bulk_export::ExportError| ApiError::Internal(e.to_string());
        let unknown = || ApiError::NotFound(format!("$bulk-member-match job {job_id}"));
        let (job, _) = bulk_export::job::get(self.store.as_ref(), job_id)
            .await
            .map_err(internal)?
            .ok_or_else(unknown)?;
        // Another client's job, or an export's, is indistinguishable from none.
        if job.client_id != who.client_id || !matches!(job.source, Source::BulkMemberMatch { .. }) {
            return Err(unknown());
        }
        let running = || -> Response<Bytes> {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("2"),
            );
            response
        };
        match job.status {
            bulk_export::JobStatus::Running => {
                let done = bulk_export::job::progress(self.store.as_ref(), &job)
                    .await
                    .map_err(internal)?;
                let mut response = running();
                if let Ok(value) =
                    http::HeaderValue::from_str(&format!("{done} of {} chunks", job.slices))
                {
                    response.headers_mut().insert("x-progress", value);
                }
                Ok(response)
            }
            bulk_export::JobStatus::Completed => {
                match crate::bulk_match::answer(self.store.as_ref(), &job)
                    .await
                    .map_err(internal)?
                {
                    Some(parameters) => Ok(fhir_response(&parameters)),
                    None => Ok(running()),
                }
            }
            bulk_export::JobStatus::Failed => Err(ApiError::Internal(
                job.failure
                    .unwrap_or_else(|| "the bulk member match failed".into()),
            )),
            bulk_export::JobStatus::Cancelled => Err(unknown()),
        }
    }

    /// `$davinci-data-export` of a match Group of this client: 404 for any other
    /// Group (another client's is indistinguishable from a missing one).
    async fn data_export(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
        group_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        require_method(request, &[Method::GET, Method::POST], "GET, POST")?;
        require_payer(who, "$davinci-data-export")?;
        bulk_export::api::require_respond_async(request)?;
        let group = bulk_export::members::get(self.store.as_ref(), group_id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .filter(|g| g.client_id == who.client_id)
            .ok_or_else(|| ApiError::NotFound(format!("Group/{group_id}")))?;
        let window = bulk_export::p2p::Window::at(fhir::clock::unix_now());
        let pairs = if request.method() == Method::POST && !request.body().is_empty() {
            let body: Value = serde_json::from_slice(request.body()).map_err(|_| {
                ApiError::BadRequest("the body must be a Parameters resource".into())
            })?;
            bulk_export::request::parameter_pairs(&body).map_err(ApiError::BadRequest)?
        } else {
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect()
        };
        let export = crate::data_export::parse(&pairs, &window).map_err(ApiError::BadRequest)?;
        for t in &export.types {
            bulk_export::api::require(who, t.as_str(), true)?;
        }
        if export.provenance {
            bulk_export::api::require(who, "Provenance", true)?;
        }
        let config = BulkConfig {
            base_url: self.config.base_url.trim_end_matches('/').to_owned(),
            retention: self.config.retention,
        };
        let kick_off = KickOff {
            job_id: None,
            export,
            source: Source::MatchGroup {
                group_id: group.id.clone(),
                sensitive: self.config.sensitive.clone(),
                window,
            },
            slices: group.chunks,
            audit_source: &group.id,
        };
        bulk_export::api::launch(
            self.store.as_ref(),
            self.queue.as_ref(),
            &config,
            who,
            request,
            kick_off,
        )
        .await
    }

    async fn decide(
        &self,
        parsed: &Parsed,
        now: i64,
    ) -> Result<(String, Value, ConsentPolicy), Refusal> {
        let policy = consent::check(
            &parsed.consent,
            parsed.member_patient_id.as_deref(),
            now.saturating_mul(1000),
        )
        .map_err(Refusal::Consent)?;
        let found = matching::find(self.store.as_ref(), &parsed.request)
            .await
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let (patient_id, member_identifier) = match found {
            MatchOutcome::Unique {
                patient_id,
                member_identifier,
            } => (patient_id, member_identifier),
            MatchOutcome::NoMatch => return Err(Refusal::NoUniqueMember("no-match")),
            MatchOutcome::Several => return Err(Refusal::NoUniqueMember("several")),
        };
        let opted_in =
            member_consent::payer_to_payer::is_opted_in(self.store.as_ref(), &patient_id)
                .await
                .map_err(|e| Refusal::Store(e.to_string()))?;
        if !opted_in {
            return Err(Refusal::NoUniqueMember("not-opted-in"));
        }
        Ok((patient_id, member_identifier, policy))
    }
}

/// The HTTP status a handler's result answers with (for the audit line).
fn status_of(result: &Result<Response<Bytes>, ApiError>) -> u16 {
    match result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status().as_u16(),
    }
}

/// The answer: the response, or the error as an OperationOutcome.
fn answer_of(result: Result<Response<Bytes>, ApiError>) -> Response<Bytes> {
    result.unwrap_or_else(|error| error_response(&error, JsonFlavour::Fhir))
}

/// 403 unless the caller is another plan's system registered as a payer.
fn require_payer(who: &SystemPrincipal, operation: &str) -> Result<(), ApiError> {
    if who.payer {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "only another health plan's system registered as a payer may call {operation}"
    )))
}

/// 405 unless the request's method is one of `methods` (listed in `allow`).
fn require_method(
    request: &Request<Bytes>,
    methods: &[Method],
    allow: &'static str,
) -> Result<(), ApiError> {
    if methods.contains(request.method()) {
        return Ok(());
    }
    Err(ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        allow,
    })
}

enum Refusal {
    Consent(consent::ConsentRefusal),
    /// The audit reason; the requester sees [`NO_UNIQUE_MEMBER`] whatever it is.
    NoUniqueMember(&'static str),
    Store(String),
}

/// The request's parameters.
struct Parsed {
    request: MatchRequest,
    consent: Value,
    member_patient_id: Option<String>,
}

fn parse(body: &[u8]) -> Result<Parsed, InputError> {
    let parameters: Value = serde_json::from_slice(body).map_err(|_| InputError::NotParameters)?;
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(InputError::NotParameters);
    }
    let list = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let one = |name: &'static str, required: bool| -> Result<Option<&Value>, InputError> {
        let mut found = list
            .iter()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name));
        match (found.next(), found.next()) {
            (Some(p), None) => p.get("resource").map(Some).ok_or(InputError::Missing(name)),
            (None, _) if !required => Ok(None),
            _ => Err(InputError::Missing(name)),
        }
    };
    let patient = one("MemberPatient", true)?.ok_or(InputError::Missing("MemberPatient"))?;
    let coverage = one("CoverageToMatch", true)?.ok_or(InputError::Missing("CoverageToMatch"))?;
    let consent = one("Consent", true)?.ok_or(InputError::Missing("Consent"))?;
    // Checked for shape and not kept: the requester is answered by its match link,
    // and the new plan's card number is member data this plan has no use for
    // (minimum necessary); HRex leaves CoverageToLink's use to the receiving payer.
    let _link = one("CoverageToLink", false)?;
    let kinds = [
        (patient, "Patient"),
        (coverage, "Coverage"),
        (consent, "Consent"),
    ];
    if kinds
        .iter()
        .any(|(r, kind)| r.get("resourceType").and_then(Value::as_str) != Some(*kind))
    {
        return Err(InputError::Invalid(
            "MemberPatient, CoverageToMatch and Consent must be a Patient, a Coverage and a Consent",
        ));
    }
    Ok(Parsed {
        request: MatchRequest::new(patient, coverage)?,
        consent: consent.clone(),
        member_patient_id: patient.get("id").and_then(Value::as_str).map(str::to_owned),
    })
}

/// HRex's answer: `MemberIdentifier` and `MemberId`.
fn parameters_response(patient_id: &str, member_identifier: Value) -> Response<Bytes> {
    fhir_response(&json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "MemberIdentifier", "valueIdentifier": member_identifier},
            {"name": "MemberId", "valueReference": {"reference": format!("Patient/{patient_id}")}}
        ]
    }))
}

/// A 200 FHIR JSON answer that no cache keeps.
fn fhir_response(body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(JsonFlavour::Fhir.content_type()),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
