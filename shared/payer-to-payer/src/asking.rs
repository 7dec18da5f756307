//! This plan as the new payer: the other plans it asks, each member's request, and
//! one run of the exchange (CMS-0057-F: ask the previous plan within a week of
//! coverage starting; concurrent plans every quarter).
//!
//! * [`OtherPayer`]: another plan's FHIR base URL, its payer id, and this plan's
//!   credentials there (a backend client id and where its private key is), kept in the
//!   key-value store (`payers add`).
//! * [`ExchangeRequest`]: one member's request of one plan, with the member's card
//!   number there. It is the record operators see (`p2p status`). It is never lost: a
//!   failure leaves it waiting with the error and the time of the next try
//!   ([`retry_after`], exponential), until [`MAX_ATTEMPTS`] and then `failed`.
//! * [`run`]: the exchange for one request, over the [`OtherPlan`] port (HTTP in
//!   [`crate::remote`]). When the other plan's CapabilityStatement lists PDex's
//!   `bulk-member-match` and `davinci-data-export`, the bulk exchange
//!   ([`crate::bulk_asking`]: `$bulk-member-match`, then `$davinci-data-export`, its
//!   files imported line by line as they stream, and the run resumable from where it
//!   stopped); otherwise `$member-match`, then `$everything`, then [`crate::import`]
//!   (see [`exchange`] for why that fallback stays). A member who has not opted in is
//!   never asked about: the request ends `not-opted-in` and nothing is sent.
//!
//! The HRex Consent sent is the member's current opt-in: period today to a year from
//! now, the member as patient and performer, this plan as the recipient
//! (`provision.actor`, role IRCP). Its policy is `#sensitive` (only data that is not
//! sensitive) unless the request says the member agreed to all data (`#regular`): a
//! general opt-in is not the specific written consent 42 CFR Part 2 asks before
//! substance-use records move, so the cautious policy is the default.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use fhir::{Instant, ResourceType};
use fhir_store::{
    KeyValueStore, ResourceStore, ResourceWrite, StoreError, WriteCondition, update_with,
};
use member_consent::Sharing;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bulk_asking::{self, Pace};
use crate::import::{self, ImportError, Source};

const PAYERS: &str = "other-payer";
/// Every request, by `{patient}:{payer}`: what operators read.
const REQUESTS: &str = "p2p-request";
/// The waiting requests in the order they are due: key `{unix seconds, 12 digits}:
/// {patient}:{payer}`, so the scheduled run reads the few due ones from the front of
/// one sorted partition instead of every request ever made.
const DUE: &str = "p2p-due";
/// How long a run holds a request it picked up; past it, another run may take it (the
/// first one crashed).
pub const LEASE_SECS: i64 = 15 * 60;
/// How often a concurrent plan is asked again (CMS: every quarter).
pub const QUARTER_SECS: i64 = 91 * 86_400;
/// Tries before a request is marked `failed` (about 9 hours of backoff in all).
pub const MAX_ATTEMPTS: u32 = 8;
const HREX_CONSENT_POLICY: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html";

/// Another plan this plan asks for its members' histories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherPayer {
    /// A short name (`[a-z0-9-]`, at most 20): the namespace of its received ids.
    pub name: String,
    /// Its FHIR base URL, without a trailing slash.
    pub base_url: String,
    /// Its payer id, as its cards show it (`CoverageToMatch.payor`).
    pub payer_id: String,
    /// This plan's backend client id at that plan.
    pub client_id: String,
    /// Where this plan's private key for that client is: a PEM file locally, a
    /// Secrets Manager secret on AWS. Never the key itself.
    pub key: String,
}

/// Why an [`OtherPayer`] cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayerError {
    #[error("the name must be 1 to 20 of a-z, 0-9 and '-'")]
    Name,
    #[error("the base URL must be https:// (http:// only for localhost)")]
    BaseUrl,
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

impl OtherPayer {
    /// Checks and normalises (no trailing slash) what an operator typed.
    pub fn checked(mut self) -> Result<Self, PayerError> {
        let name_ok = (1..=20).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err(PayerError::Name);
        }
        self.base_url = self.base_url.trim_end_matches('/').to_owned();
        let local = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|p| self.base_url.starts_with(p));
        if !(self.base_url.starts_with("https://") || local) {
            return Err(PayerError::BaseUrl);
        }
        for (what, value) in [
            ("payer id", &self.payer_id),
            ("client id", &self.client_id),
            ("key", &self.key),
        ] {
            if value.trim().is_empty() {
                return Err(PayerError::Empty(what));
            }
        }
        Ok(self)
    }

    /// What received resources are marked with.
    pub fn source(&self) -> Source {
        Source {
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            payer_id: self.payer_id.clone(),
        }
    }
}

/// Records (or replaces) another plan.
pub async fn add_payer<K: KeyValueStore + ?Sized>(
    kv: &K,
    payer: &OtherPayer,
) -> Result<(), StoreError> {
    kv.put(PAYERS, &payer.name, &to_value(payer)?, None).await
}

/// The plan recorded as `name`.
pub async fn payer<K: KeyValueStore + ?Sized>(
    kv: &K,
    name: &str,
) -> Result<Option<OtherPayer>, StoreError> {
    match kv.get(PAYERS, name).await? {
        Some(entry) => from_value(entry.value).map(Some),
        None => Ok(None),
    }
}

/// Other plans recorded, at most this many are listed (a member picks one of them).
pub const MAX_PAYERS_LISTED: usize = 200;

/// The other plans recorded (`payers add`), by name.
pub async fn payers<K: KeyValueStore + ?Sized>(kv: &K) -> Result<Vec<OtherPayer>, StoreError> {
    kv.list(PAYERS, "", MAX_PAYERS_LISTED)
        .await?
        .into_iter()
        .map(|(_, entry)| from_value(entry.value))
        .collect()
}

/// Where one member's request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestState {
    /// Not asked yet, or waiting for its next try after a failure.
    Waiting,
    /// Received and imported.
    Done,
    /// The other plan found no single member with these demographics and card.
    NotMatched,
    /// The member has not opted in (or opted out): nothing was asked.
    NotOptedIn,
    /// Every try failed; an operator must look (the last error says why).
    Failed,
}

/// One member's request of one other plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRequest {
    pub patient: String,
    pub payer: String,
    /// The member's card number at that plan (subscriber or member id).
    pub old_member_id: String,
    /// The member agreed to all data moving (`#regular`); otherwise `#sensitive`.
    pub all_data: bool,
    /// The member is covered by both plans at once: asked again every quarter.
    #[serde(default)]
    pub concurrent: bool,
    pub state: RequestState,
    pub attempts: u32,
    /// Unix seconds of the next try (while `waiting`).
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// Resources received by the last successful run (Provenance not counted).
    pub received: usize,
    pub updated_at: i64,
    /// Where an unfinished bulk exchange stands, so that the next run continues it
    /// (none before the first run, after the last, and for the `$everything` fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Which asking this is: new with every [`request`], so that a run under way
    /// never writes its request back over one the member or an operator made
    /// meanwhile ([`write_if_same_request`]).
    #[serde(default)]
    pub generation: String,
}

/// How far a bulk exchange got, saved after each step ([`crate::bulk_asking`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// When this exchange started (unix seconds): the time each Provenance records, and
    /// the start of its deadline.
    pub started_at: i64,
    /// `$bulk-member-match`'s status URL, once asked.
    #[serde(default)]
    pub match_status: Option<String>,
    /// The matched Group at the other plan, once the match answered.
    #[serde(default)]
    pub group: Option<String>,
    /// The member's Patient id at the other plan.
    #[serde(default)]
    pub their_patient: Option<String>,
    /// `$davinci-data-export`'s status URL, once the export was started.
    #[serde(default)]
    pub export_status: Option<String>,
    /// The manifest's file URLs wholly imported.
    #[serde(default)]
    pub imported_files: Vec<String>,
    /// Resources those files held (Provenance not counted).
    #[serde(default)]
    pub received: usize,
}

impl Progress {
    pub fn new(now: i64) -> Self {
        Progress {
            started_at: now,
            ..Progress::default()
        }
    }

    /// The exchange's start as a FHIR instant (`recorded` of each Provenance).
    pub fn received_at(&self) -> String {
        instant(self.started_at)
    }
}

fn instant(unix_secs: i64) -> String {
    Instant::from_unix_millis(unix_secs.saturating_mul(1000))
        .map(|i| i.as_str().to_owned())
        .unwrap_or_default()
}

fn request_key(patient: &str, payer: &str) -> String {
    format!("{patient}:{payer}")
}

/// What a member's request asks of the other plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The member's card number at that plan.
    pub old_member_id: String,
    /// The member agreed in writing to all data moving (`#regular`).
    pub all_data: bool,
    /// A concurrent plan: ask again every quarter.
    pub concurrent: bool,
}

/// Records that `patient` wants their history from `payer`, to be asked now. A new
/// request replaces an earlier one for the same plan (its state starts over).
pub async fn request<K: KeyValueStore + ?Sized>(
    kv: &K,
    patient: &str,
    payer: &str,
    terms: Terms,
    now: i64,
) -> Result<ExchangeRequest, StoreError> {
    request_due(kv, patient, payer, terms, now, now).await
}

/// [`request`], due when CMS has the new plan ask: within a week of the member's
/// coverage here starting, or of the opt-in when that is later ([`due_at`]). A member
/// whose coverage with this plan starts in the future is asked about on its first day,
/// not before (the other plan's data then covers the whole time up to the switch).
pub async fn request_when_due<S>(
    store: &S,
    patient: &str,
    payer: &str,
    terms: Terms,
    now: i64,
) -> Result<ExchangeRequest, StoreError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let due = due_at(store, patient, now).await?;
    request_due(store, patient, payer, terms, now, due).await
}

/// When a new request for `patient` is due: now, unless none of the member's
/// Coverages with this plan has started yet (status active, `period.start` after
/// now; received Coverages from other plans do not count), and then the earliest of
/// their starts. A member with no Coverage here, or one without a start, is asked now.
pub async fn due_at<S: ResourceStore + ?Sized>(
    store: &S,
    patient: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let partition = fhir_store::Partition::Compartment {
        patient: patient.to_owned(),
        resource_type: ResourceType::Coverage,
    };
    let page = store
        .list(fhir_store::ListQuery::new(partition, 200))
        .await?;
    let mut earliest_future: Option<i64> = None;
    for (_, record) in page.entries {
        let Ok(body) = serde_json::from_str::<Value>(&record.body) else {
            continue;
        };
        if import::is_received(&body)
            || body.get("status").and_then(Value::as_str) != Some("active")
        {
            continue;
        }
        let start = body
            .pointer("/period/start")
            .and_then(Value::as_str)
            .and_then(start_secs);
        match start {
            Some(start) if start > now => {
                earliest_future = Some(earliest_future.map_or(start, |e| e.min(start)));
            }
            // Coverage here has started (or has no start): ask now.
            _ => return Ok(now),
        }
    }
    Ok(earliest_future.unwrap_or(now))
}

/// A FHIR date or dateTime as unix seconds (a date: its first moment, UTC).
fn start_secs(text: &str) -> Option<i64> {
    let instant = if text.len() == 10 {
        Instant::parse(&format!("{text}T00:00:00Z"))
    } else {
        Instant::parse(text)
    };
    instant.ok().map(|i| i.unix_millis().div_euclid(1000))
}

async fn request_due<K: KeyValueStore + ?Sized>(
    kv: &K,
    patient: &str,
    payer: &str,
    terms: Terms,
    now: i64,
    due: i64,
) -> Result<ExchangeRequest, StoreError> {
    let request = ExchangeRequest {
        patient: patient.to_owned(),
        payer: payer.to_owned(),
        old_member_id: terms.old_member_id,
        all_data: terms.all_data,
        concurrent: terms.concurrent,
        state: RequestState::Waiting,
        attempts: 0,
        next_attempt_at: due,
        last_error: None,
        received: 0,
        updated_at: now,
        progress: None,
        generation: secrets::random_hex(8).map_err(|e| StoreError::Backend(e.to_string()))?,
    };
    let earlier = get_request(kv, patient, payer).await?;
    kv.put(
        REQUESTS,
        &request_key(patient, payer),
        &to_value(&request)?,
        None,
    )
    .await?;
    move_in_due_order(kv, earlier.as_ref(), &request).await?;
    Ok(request)
}

/// The member's request of `payer`.
pub async fn get_request<K: KeyValueStore + ?Sized>(
    kv: &K,
    patient: &str,
    payer: &str,
) -> Result<Option<ExchangeRequest>, StoreError> {
    match kv.get(REQUESTS, &request_key(patient, payer)).await? {
        Some(entry) => from_value(entry.value).map(Some),
        None => Ok(None),
    }
}

/// The member's requests, one per other plan (by the plan's name).
pub async fn requests_of<K: KeyValueStore + ?Sized>(
    kv: &K,
    patient: &str,
) -> Result<Vec<ExchangeRequest>, StoreError> {
    kv.list(REQUESTS, &format!("{patient}:"), MAX_PAYERS_LISTED)
        .await?
        .into_iter()
        .map(|(_, entry)| from_value::<ExchangeRequest>(entry.value))
        // `{patient}:` could prefix a longer key only if ids held a `:`; they never do.
        .filter(|request| !matches!(request, Ok(r) if r.patient != patient))
        .collect()
}

/// Requests whose time has come, at most `limit`, each now held by the caller for
/// [`LEASE_SECS`] (so two overlapping scheduled runs never run one request twice, and
/// one that crashed is picked up again when the lease ends).
pub async fn due<K: KeyValueStore + ?Sized>(
    kv: &K,
    now: i64,
    limit: usize,
) -> Result<Vec<ExchangeRequest>, StoreError> {
    let mut due = Vec::new();
    // Leased entries sit at the front too: read past a bounded number of them.
    for (key, entry) in kv.list(DUE, "", limit.saturating_mul(4).max(16)).await? {
        let Some((at, rest)) = key.split_once(':') else {
            continue;
        };
        if at.parse::<i64>().map_or(true, |at| at > now) {
            break;
        }
        let leased_until = entry.value["leased_until"].as_i64().unwrap_or(0);
        if leased_until > now {
            continue;
        }
        let lease = json!({"leased_until": now + LEASE_SECS});
        if !kv.replace(DUE, &key, entry.version, &lease, None).await? {
            continue;
        }
        let Some((patient, payer)) = rest.split_once(':') else {
            continue;
        };
        match get_request(kv, patient, payer).await? {
            Some(request) if request.state == RequestState::Waiting => due.push(request),
            _ => kv.delete(DUE, &key).await?,
        }
        if due.len() == limit {
            break;
        }
    }
    Ok(due)
}

fn due_key(request: &ExchangeRequest) -> String {
    format!(
        "{:012}:{}:{}",
        request.next_attempt_at.max(0),
        request.patient,
        request.payer
    )
}

/// Writes `request` over the stored one only while that is still the same asking
/// (its [`ExchangeRequest::generation`]), as one conditional write: a member who asks
/// again while a run is under way (a new card number, all data after all) replaces
/// the request, and the run must not put the old one back. Returns whether it wrote;
/// a run whose request was replaced lets the new one be picked up in its turn.
async fn write_if_same_request<K: KeyValueStore + ?Sized>(
    kv: &K,
    request: &ExchangeRequest,
) -> Result<bool, StoreError> {
    let key = request_key(&request.patient, &request.payer);
    let Some(stored) = kv.get(REQUESTS, &key).await? else {
        return Ok(false);
    };
    let version = stored.version;
    let stored: ExchangeRequest = from_value(stored.value)?;
    if stored.generation != request.generation {
        return Ok(false);
    }
    kv.replace(REQUESTS, &key, version, &to_value(request)?, None)
        .await
}

/// Saves a run's outcome, moving the request's place in the due order (from where
/// `earlier` had it), unless the request was replaced meanwhile.
async fn save<K: KeyValueStore + ?Sized>(
    kv: &K,
    earlier: Option<&ExchangeRequest>,
    request: &ExchangeRequest,
) -> Result<(), StoreError> {
    if write_if_same_request(kv, request).await? {
        move_in_due_order(kv, earlier, request).await?;
    }
    Ok(())
}

/// Takes `earlier`'s place in the due order away and gives `request` its own.
async fn move_in_due_order<K: KeyValueStore + ?Sized>(
    kv: &K,
    earlier: Option<&ExchangeRequest>,
    request: &ExchangeRequest,
) -> Result<(), StoreError> {
    if let Some(earlier) = earlier.filter(|e| e.state == RequestState::Waiting) {
        kv.delete(DUE, &due_key(earlier)).await?;
    }
    if request.state == RequestState::Waiting {
        kv.put(DUE, &due_key(request), &json!({"leased_until": 0}), None)
            .await?;
    }
    Ok(())
}

/// Saves where a run is, without moving the request in the due order (the run holds
/// its lease there), unless the request was replaced meanwhile: then the run goes on
/// unsaved and its end is not written either.
pub(crate) async fn save_progress<K: KeyValueStore + ?Sized>(
    kv: &K,
    request: &ExchangeRequest,
) -> Result<(), StoreError> {
    write_if_same_request(kv, request).await.map(|_| ())
}

/// Seconds before try `attempts + 1`: a minute, doubling, at most six hours.
pub fn retry_after(attempts: u32) -> i64 {
    (60_i64 << attempts.saturating_sub(1).min(16)).min(6 * 3600)
}

/// What went wrong at the other plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// `$member-match` answered 422: no single member matched.
    #[error("no match: {0}")]
    NotMatched(String),
    /// A refusal that asking again will not change (401, 403, 404, 400).
    #[error("refused ({status}): {text}")]
    Refused { status: u16, text: String },
    /// A timeout, a network failure, 429 or 5xx: try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not what the operation promises.
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

/// One look at an asynchronous request's status URL.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// 202: not yet; come back after `retry_after` when the other plan said.
    Running { retry_after: Option<Duration> },
    /// 200: the answer (`$bulk-member-match`'s Parameters, an export's manifest).
    Done(Value),
    /// The other plan no longer knows the job (404, 410), or the job failed there.
    Gone(String),
}

/// A file's bytes as they arrive.
pub type ByteStream<'a> = BoxStream<'a, Result<bytes::Bytes, RemoteError>>;

/// What the other plan's CapabilityStatement says it serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Both PDex bulk operations, `bulk-member-match` and `davinci-data-export`.
    pub bulk: bool,
}

/// The other plan's API, as the exchange needs it (adapter: [`crate::remote`]). The
/// bulk operations' defaults are those of a plan that serves only the single-member
/// ones (no bulk capability; each bulk call refused).
pub trait OtherPlan: Send + Sync {
    /// `GET /metadata`: which exchange the other plan serves. A plan whose
    /// CapabilityStatement cannot be read serves only the single-member operations.
    fn capabilities(&self) -> impl Future<Output = Result<Capabilities, RemoteError>> + Send {
        async { Ok(Capabilities::default()) }
    }

    /// `POST /Patient/$member-match`; the other plan's Patient id of the member.
    fn member_match(
        &self,
        parameters: &Value,
    ) -> impl Future<Output = Result<String, RemoteError>> + Send;

    /// `GET /Patient/{id}/$everything`: every resource, all pages.
    fn everything(
        &self,
        patient_id: &str,
    ) -> impl Future<Output = Result<Vec<Value>, RemoteError>> + Send;

    /// `POST /Group/$bulk-member-match` (`Prefer: respond-async`): the status URL.
    fn bulk_member_match(
        &self,
        _parameters: &Value,
    ) -> impl Future<Output = Result<String, RemoteError>> + Send {
        async { Err(not_offered()) }
    }

    /// `GET /Group/{group}/$davinci-data-export` of the payer-to-payer export type with
    /// `_type` = `types` (`Prefer: respond-async`): the status URL.
    fn data_export(
        &self,
        _group: &str,
        _types: &str,
    ) -> impl Future<Output = Result<String, RemoteError>> + Send {
        async { Err(not_offered()) }
    }

    /// One `GET` of a status URL.
    fn poll(&self, _status_url: &str) -> impl Future<Output = Result<Poll, RemoteError>> + Send {
        async { Err(not_offered()) }
    }

    /// `GET` of an output file (with the token when `with_token`): its bytes as they
    /// arrive.
    fn download<'a>(
        &'a self,
        _url: &'a str,
        _with_token: bool,
    ) -> impl Future<Output = Result<ByteStream<'a>, RemoteError>> + Send {
        async { Err(not_offered()) }
    }
}

fn not_offered() -> RemoteError {
    RemoteError::Refused {
        status: 404,
        text: "the other plan does not offer PDex's bulk exchange".into(),
    }
}

/// Why a run could not even record its outcome.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the member's opt-in: {0}")]
    OptIn(String),
}

/// One try of `request` against `plan`: the request as it stands afterwards (also
/// saved). Failures at the other plan or in its answer are in the request, not errors.
pub async fn run<S, K, P>(
    store: &S,
    kv: &K,
    plan: &P,
    payer: &OtherPayer,
    request: ExchangeRequest,
    now: i64,
) -> Result<ExchangeRequest, ExchangeError>
where
    S: ResourceStore + ?Sized,
    K: KeyValueStore + ?Sized,
    P: OtherPlan,
{
    run_with(store, kv, plan, payer, request, now, &Pace::default()).await
}

/// [`run`], waiting for the other plan at `pace`.
pub async fn run_with<S, K, P>(
    store: &S,
    kv: &K,
    plan: &P,
    payer: &OtherPayer,
    mut request: ExchangeRequest,
    now: i64,
    pace: &Pace,
) -> Result<ExchangeRequest, ExchangeError>
where
    S: ResourceStore + ?Sized,
    K: KeyValueStore + ?Sized,
    P: OtherPlan,
{
    let earlier = request.clone();
    request.updated_at = now;
    let opted_in = Sharing::PayerToPayer
        .is_on(store, &request.patient)
        .await
        .map_err(|e| ExchangeError::OptIn(e.to_string()))?;
    let outcome = if opted_in {
        exchange(store, kv, plan, payer, &mut request, now, pace).await?
    } else {
        Outcome::NotOptedIn
    };
    // Who asked whom about which member, and what came of it (no PHI beyond the id).
    tracing::info!(
        target: "audit",
        event = "p2p.exchange",
        patient = %request.patient,
        payer = %payer.name,
        outcome = outcome.label(),
        "payer-to-payer request run"
    );
    match outcome {
        Outcome::Received(count) => {
            request.received = count;
            request.last_error = None;
            request.attempts = 0;
            request.progress = None;
            if request.concurrent {
                request.state = RequestState::Waiting;
                request.next_attempt_at = now + QUARTER_SECS;
            } else {
                request.state = RequestState::Done;
            }
        }
        Outcome::NotOptedIn => {
            request.state = RequestState::NotOptedIn;
            request.progress = None;
        }
        // The other plan is still matching or exporting: not a failure, no attempt
        // spent; the next run continues from the saved progress.
        Outcome::StillRunning(wait_secs) => {
            request.state = RequestState::Waiting;
            request.next_attempt_at = now + wait_secs;
        }
        Outcome::Failed(error) => {
            request.attempts += 1;
            request.last_error = Some(error.to_string());
            request.state = match error {
                RemoteError::NotMatched(_) => RequestState::NotMatched,
                RemoteError::Refused { .. } => RequestState::Failed,
                _ if request.attempts >= MAX_ATTEMPTS => RequestState::Failed,
                _ => {
                    request.next_attempt_at = now + retry_after(request.attempts);
                    RequestState::Waiting
                }
            };
            // A try that will come again keeps its progress (the same match and
            // export continue); one that ended starts afresh when asked again.
            if request.state != RequestState::Waiting {
                request.progress = None;
            }
        }
    }
    save(kv, Some(&earlier), &request).await?;
    Ok(request)
}

/// How one run ended.
pub(crate) enum Outcome {
    Received(usize),
    NotOptedIn,
    /// The other plan has not finished; look again in this many seconds.
    StillRunning(i64),
    Failed(RemoteError),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Received(_) => "received",
            Outcome::NotOptedIn => "not-opted-in",
            Outcome::StillRunning(_) => "still-running",
            Outcome::Failed(RemoteError::NotMatched(_)) => "not-matched",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The exchange itself: PDex's bulk pair when the other plan offers it (or a bulk
/// exchange is under way), else `$member-match` and `$everything`.
///
/// **Why the `$everything` fallback stays.** CMS-0057-F requires the exchange, and
/// PDex makes the bulk operations the way to do it, but other plans reach PDex at
/// different times: plans that implemented HRex `$member-match` and `$everything`
/// first (HAPI, Microsoft and others serve these, not yet PDex's bulk pair) still
/// answer a member's request. A plan whose CapabilityStatement (`/metadata`) does not
/// list both `bulk-member-match` and `davinci-data-export` (or cannot be read) is asked
/// the single-member way rather than not at all. That answer is held whole (a member's
/// five years; the import bounds it at [`import::MAX_RESOURCES`]), and a run cut off
/// midway starts again (the same ids, so nothing duplicates).
async fn exchange<S, K, P>(
    store: &S,
    kv: &K,
    plan: &P,
    payer: &OtherPayer,
    request: &mut ExchangeRequest,
    now: i64,
    pace: &Pace,
) -> Result<Outcome, StoreError>
where
    S: ResourceStore + ?Sized,
    K: KeyValueStore + ?Sized,
    P: OtherPlan,
{
    let Some(member) = store.get(ResourceType::Patient, &request.patient).await? else {
        return Ok(Outcome::Failed(RemoteError::Refused {
            status: 404,
            text: "no such member in this plan".into(),
        }));
    };
    let member: Value = serde_json::from_str(&member.body).unwrap_or(Value::Null);
    if request.progress.is_none() {
        match plan.capabilities().await {
            Ok(Capabilities { bulk: true }) => {}
            Ok(Capabilities { bulk: false }) => {
                return single_member(store, plan, payer, request, &member, now).await;
            }
            Err(error) => return Ok(Outcome::Failed(error)),
        }
    }
    let parties = bulk_asking::Parties {
        store,
        kv,
        plan,
        payer,
    };
    bulk_asking::exchange(parties, request, &member, now, pace).await
}

/// `$member-match`, then `$everything`, then the import of the whole answer.
async fn single_member<S, P>(
    store: &S,
    plan: &P,
    payer: &OtherPayer,
    request: &ExchangeRequest,
    member: &Value,
    now: i64,
) -> Result<Outcome, StoreError>
where
    S: ResourceStore + ?Sized,
    P: OtherPlan,
{
    let received_at = instant(now);
    let today = received_at.get(..10).unwrap_or_default();
    let parameters = member_match_parameters(member, request, payer, today);
    let their_id = match plan.member_match(&parameters).await {
        Ok(id) => id,
        Err(error) => return Ok(Outcome::Failed(error)),
    };
    let answer = match plan.everything(&their_id).await {
        Ok(answer) => answer,
        Err(error) => return Ok(Outcome::Failed(error)),
    };
    let source = payer.source();
    match import_and_store(store, &answer, &source, &request.patient, &received_at).await? {
        Ok(received) => Ok(Outcome::Received(received)),
        Err(error) => Ok(Outcome::Failed(bad_answer(error))),
    }
}

/// Writes in flight at once: DynamoDB takes them in parallel (a member's five years
/// would otherwise take a write's latency 2 × thousands of times); redb queues them.
pub const WRITE_CONCURRENCY: usize = 16;
/// Resources converted ahead of the writes: bounds the copies held.
const CONVERT_CHUNK: usize = bulk_asking::CONVERT_CHUNK;

/// Checks the whole answer, then converts and writes it a chunk at a time (so only the
/// answer itself is held, not a converted copy). The received resources written
/// (Provenance not counted), or why the answer was refused (nothing written).
pub async fn import_and_store<S: ResourceStore + ?Sized>(
    store: &S,
    answer: &[Value],
    source: &Source,
    member: &str,
    received_at: &str,
) -> Result<Result<usize, ImportError>, StoreError> {
    let checked = match import::check(answer, source, member) {
        Ok(checked) => checked,
        Err(error) => return Ok(Err(error)),
    };
    let mut received = 0;
    for chunk in answer.chunks(CONVERT_CHUNK) {
        let imported = chunk
            .iter()
            .flat_map(|resource| checked.convert(resource, received_at))
            .collect();
        received += store_received(store, imported, &source.name).await?;
    }
    Ok(Ok(received))
}

/// Writes an imported answer from plan `source`, [`WRITE_CONCURRENCY`] at a time;
/// returns the received resources written (Provenance not counted). Each write is one
/// conditional put, so a crash leaves what was written, and the re-run overwrites it
/// with the same ids.
pub async fn store_received<S: ResourceStore + ?Sized>(
    store: &S,
    imported: Vec<import::Imported>,
    source: &str,
) -> Result<usize, StoreError> {
    let writes = futures_util::stream::iter(imported).map(|item| async move {
        let counted = item.resource_type != ResourceType::Provenance;
        Ok::<_, StoreError>(write_received(store, item, source).await? && counted)
    });
    let written: Vec<bool> = writes
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(written.into_iter().filter(|counted| *counted).count())
}

fn bad_answer(error: ImportError) -> RemoteError {
    RemoteError::BadAnswer(error.to_string())
}

/// Writes one received resource unless a resource of this plan's own (not from the
/// same source) has its id; returns whether it was written.
async fn write_received<S: ResourceStore + ?Sized>(
    store: &S,
    item: import::Imported,
    source: &str,
) -> Result<bool, StoreError> {
    let mut refused = false;
    let written = update_with(store, item.resource_type, &item.id, |current| {
        if let Some(current) = current
            && !serde_json::from_str::<Value>(&current.body)
                .is_ok_and(|body| import::is_from(&body, source))
        {
            refused = true;
            return None;
        }
        Some(ResourceWrite::indexed(
            item.resource_type,
            item.id.clone(),
            item.body.clone(),
            WriteCondition::Always,
        ))
    })
    .await?;
    if refused {
        tracing::warn!(
            event = "p2p.import_refused",
            resource_type = %item.resource_type,
            id = %item.id,
            "a received resource would replace one of this plan's own; not written"
        );
    }
    Ok(written.is_some())
}

/// HRex `$member-match` Parameters: the member's demographics (nothing else of the
/// Patient), the old card, and the member's consent.
pub fn member_match_parameters(
    member: &Value,
    request: &ExchangeRequest,
    payer: &OtherPayer,
    today: &str,
) -> Value {
    let mut patient = json!({"resourceType": "Patient", "id": "1"});
    for field in ["name", "birthDate", "gender"] {
        if let Some(value) = member.get(field) {
            patient[field] = value.clone();
        }
    }
    let year_later = next_year(today);
    let policy = if request.all_data {
        "#regular"
    } else {
        "#sensitive"
    };
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "MemberPatient", "resource": patient},
        {"name": "CoverageToMatch", "resource": {
            "resourceType": "Coverage", "id": "1", "status": "active",
            "subscriberId": request.old_member_id,
            "identifier": [{"value": request.old_member_id}],
            "beneficiary": {"reference": "Patient/1"},
            "payor": [{"identifier": {"value": payer.payer_id}, "display": payer.name}]}},
        {"name": "Consent", "resource": {
            "resourceType": "Consent", "id": "1", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
            "patient": {"reference": "Patient/1"},
            "performer": [{"reference": "Patient/1"}],
            "sourceReference": {"reference": "Patient/1"},
            "policy": [{"uri": format!("{HREX_CONSENT_POLICY}{policy}")}],
            "provision": {"type": "permit", "period": {"start": today, "end": year_later},
                          "actor": [{"role": {"coding": [{
                              "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                              "code": "IRCP"}]},
                              "reference": {"identifier": {"value": payer.payer_id}}}],
                          "action": [{"coding": [{
                              "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                              "code": "disclose"}]}]}}}
    ]})
}

/// `YYYY-MM-DD` a year on (29 February becomes 28 February).
fn next_year(day: &str) -> String {
    let Some((year, rest)) = day.split_once('-') else {
        return day.to_owned();
    };
    let Ok(year) = year.parse::<i32>() else {
        return day.to_owned();
    };
    let rest = if rest == "02-29" { "02-28" } else { rest };
    format!("{:04}-{rest}", year + 1)
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(|e| StoreError::InvalidValue(e.to_string()))
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::InvalidValue(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_a_minute_then_double_up_to_six_hours() {
        assert_eq!(retry_after(1), 60);
        assert_eq!(retry_after(2), 120);
        assert_eq!(retry_after(4), 480);
        assert_eq!(retry_after(20), 6 * 3600);
    }

    #[test]
    fn an_operator_typed_payer_is_checked_and_normalised() {
        let payer = |name: &str, url: &str| OtherPayer {
            name: name.into(),
            base_url: url.into(),
            payer_id: "OLD01".into(),
            client_id: "c".into(),
            key: "key.pem".into(),
        };
        assert_eq!(
            payer("oldplan", "https://fhir.old.example/r4/")
                .checked()
                .map(|p| p.base_url),
            Ok("https://fhir.old.example/r4".into())
        );
        assert!(payer("oldplan", "http://127.0.0.1:8080").checked().is_ok());
        assert_eq!(
            payer("Old Plan", "https://x").checked(),
            Err(PayerError::Name)
        );
        assert_eq!(
            payer("old", "http://fhir.old.example").checked(),
            Err(PayerError::BaseUrl)
        );
    }

    #[test]
    fn the_member_match_sends_demographics_the_old_card_and_the_consent_only() {
        let member = json!({"resourceType": "Patient", "id": "m1",
            "identifier": [{"value": "OUR-ID"}], "address": [{"city": "Austin"}],
            "name": [{"family": "Núñez", "given": ["Ana"]}], "birthDate": "1985-04-12",
            "gender": "female"});
        let request = ExchangeRequest {
            patient: "m1".into(),
            payer: "oldplan".into(),
            old_member_id: "SUB-7001".into(),
            all_data: false,
            concurrent: false,
            state: RequestState::Waiting,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
            received: 0,
            updated_at: 0,
            progress: None,
            generation: String::new(),
        };
        let payer = other_payer("oldplan");
        let parameters = member_match_parameters(&member, &request, &payer, "2027-01-08");
        let patient = &parameters["parameter"][0]["resource"];
        assert_eq!(patient["birthDate"], "1985-04-12");
        assert!(patient.get("identifier").is_none() && patient.get("address").is_none());
        let card = &parameters["parameter"][1]["resource"];
        assert_eq!(card["subscriberId"], "SUB-7001");
        assert_eq!(card["payor"][0]["identifier"]["value"], "OLD01");
        let consent = &parameters["parameter"][2]["resource"];
        assert_eq!(consent["provision"]["period"]["end"], "2028-01-08");
        assert!(
            consent["policy"][0]["uri"]
                .as_str()
                .unwrap()
                .ends_with("#sensitive"),
            "only non-sensitive data unless the member agreed to all"
        );
    }

    fn terms(card: &str) -> Terms {
        Terms {
            old_member_id: card.into(),
            all_data: false,
            concurrent: false,
        }
    }

    /// A member of this plan (a Patient) who opted in to Payer-to-Payer.
    async fn opted_in_member(store: &store_redb::RedbStore, id: &str) {
        member_consent::Sharing::PayerToPayer
            .set(store, id, true, member_consent::ChangedBy::Plan)
            .await
            .unwrap();
        ResourceStore::put(
            store,
            ResourceWrite::indexed(
                ResourceType::Patient,
                id,
                json!({"resourceType": "Patient", "id": id, "birthDate": "1985-04-12"}),
                WriteCondition::Always,
            ),
        )
        .await
        .unwrap();
    }

    fn other_payer(name: &str) -> OtherPayer {
        OtherPayer {
            name: name.into(),
            base_url: format!("https://fhir.{name}.example"),
            payer_id: "OLD01".into(),
            client_id: "c".into(),
            key: "k".into(),
        }
    }

    fn store() -> (tempfile::TempDir, store_redb::RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("s.redb")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_due_request_is_handed_to_one_run_only_until_its_lease_ends() {
        let (_dir, store) = store();
        request(&store, "m1", "oldplan", terms("SUB-1"), 1000)
            .await
            .unwrap();
        request(&store, "m2", "oldplan", terms("SUB-2"), 5000)
            .await
            .unwrap();
        let first = due(&store, 1000, 10).await.unwrap();
        assert_eq!(first.len(), 1, "m2 is not due yet");
        assert_eq!(first[0].patient, "m1");
        assert!(
            due(&store, 1001, 10).await.unwrap().is_empty(),
            "leased to the first run"
        );
        let after_lease = due(&store, 1000 + LEASE_SECS + 1, 10).await.unwrap();
        assert_eq!(
            after_lease.len(),
            1,
            "a run that crashed gives it back when the lease ends"
        );
        let later = due(&store, 5000, 10).await.unwrap();
        assert_eq!(
            later.iter().map(|r| r.patient.as_str()).collect::<Vec<_>>(),
            ["m1", "m2"],
            "m2 in its turn; m1 again, as no run ever finished it"
        );
    }

    #[tokio::test]
    async fn a_member_whose_coverage_here_starts_next_month_is_asked_about_on_its_first_day() {
        let (_dir, store) = store();
        let coverage = |id: &str, start: &str, received: bool| {
            let mut body = json!({"resourceType": "Coverage", "id": id, "status": "active",
                "beneficiary": {"reference": "Patient/m1"}, "period": {"start": start}});
            if received {
                body["meta"] =
                    json!({"tag": [{"system": import::RECEIVED_FROM_SYSTEM, "code": "oldplan"}]});
            }
            ResourceWrite::indexed(ResourceType::Coverage, id, body, WriteCondition::Always)
        };
        let now = 1_798_761_600; // 2027-01-01T00:00:00Z
        let february = 1_801_440_000; // 2027-02-01T00:00:00Z
        assert_eq!(
            due_at(&store, "m1", now).await.unwrap(),
            now,
            "no coverage: now"
        );
        ResourceStore::put(&store, coverage("old", "2020-01-01", true))
            .await
            .unwrap();
        ResourceStore::put(&store, coverage("ours", "2027-02-01", false))
            .await
            .unwrap();
        assert_eq!(
            due_at(&store, "m1", now).await.unwrap(),
            february,
            "the received coverage of the old plan does not count"
        );
        let asked = request_when_due(&store, "m1", "oldplan", terms("SUB-1"), now)
            .await
            .unwrap();
        assert_eq!(asked.next_attempt_at, february);
        assert!(due(&store, february - 1, 10).await.unwrap().is_empty());
        assert_eq!(due(&store, february, 10).await.unwrap().len(), 1);
        // Once the coverage has started (or the opt-in comes later), now.
        assert_eq!(
            due_at(&store, "m1", february + 5).await.unwrap(),
            february + 5
        );
    }

    struct Down;

    impl OtherPlan for Down {
        async fn member_match(&self, _: &Value) -> Result<String, RemoteError> {
            Err(RemoteError::Unavailable("503".into()))
        }

        async fn everything(&self, _: &str) -> Result<Vec<Value>, RemoteError> {
            Err(RemoteError::Unavailable("503".into()))
        }
    }

    #[tokio::test]
    async fn a_failed_try_moves_the_request_to_its_retry_time_and_after_the_last_it_fails() {
        let (_dir, store) = store();
        opted_in_member(&store, "m1").await;
        let payer = other_payer("oldplan");
        let mut now = 1000;
        let mut current = request(&store, "m1", "oldplan", terms("SUB-1"), now)
            .await
            .unwrap();
        for attempt in 1..=MAX_ATTEMPTS {
            let picked = due(&store, now, 10).await.unwrap();
            assert_eq!(picked.len(), 1, "try {attempt} is due");
            current = run(&store, &store, &Down, &payer, picked[0].clone(), now)
                .await
                .unwrap();
            assert_eq!(current.attempts, attempt);
            now = current.next_attempt_at;
        }
        assert_eq!(current.state, RequestState::Failed);
        assert_eq!(current.last_error.as_deref(), Some("unavailable: 503"));
        assert!(
            due(&store, now + 365 * 86_400, 10)
                .await
                .unwrap()
                .is_empty(),
            "a failed request waits for an operator"
        );
    }

    struct Answers;

    impl OtherPlan for Answers {
        async fn member_match(&self, _: &Value) -> Result<String, RemoteError> {
            Ok("p9".into())
        }

        async fn everything(&self, _: &str) -> Result<Vec<Value>, RemoteError> {
            Ok(vec![
                json!({"resourceType": "Patient", "id": "p9"}),
                json!({"resourceType": "ExplanationOfBenefit", "id": "e1",
                       "patient": {"reference": "Patient/p9"}}),
            ])
        }
    }

    /// The other plan, while the member asks again (another card) in the middle of
    /// the run.
    struct AskedAgainMidRun<'s>(&'s store_redb::RedbStore);

    impl OtherPlan for AskedAgainMidRun<'_> {
        async fn member_match(&self, _: &Value) -> Result<String, RemoteError> {
            request(self.0, "m1", "oldplan", terms("SUB-NEW"), 1500)
                .await
                .unwrap();
            Ok("p9".into())
        }

        async fn everything(&self, patient: &str) -> Result<Vec<Value>, RemoteError> {
            Answers.everything(patient).await
        }
    }

    #[tokio::test]
    async fn a_member_who_asks_again_during_a_run_keeps_the_new_request() {
        let (_dir, store) = store();
        opted_in_member(&store, "m1").await;
        let asked = request(&store, "m1", "oldplan", terms("SUB-OLD"), 1000)
            .await
            .unwrap();
        let plan = AskedAgainMidRun(&store);
        run(&store, &store, &plan, &other_payer("oldplan"), asked, 2000)
            .await
            .unwrap();
        let stored = get_request(&store, "m1", "oldplan").await.unwrap().unwrap();
        assert_eq!(
            stored.old_member_id, "SUB-NEW",
            "the run did not write back the old one"
        );
        assert_eq!(stored.state, RequestState::Waiting);
        let picked = due(&store, 2000, 10).await.unwrap();
        assert_eq!(picked.len(), 1, "the new request is picked up in its turn");
        assert_eq!(picked[0].old_member_id, "SUB-NEW");
    }

    #[tokio::test]
    async fn a_concurrent_plan_is_asked_again_every_quarter() {
        let (_dir, store) = store();
        opted_in_member(&store, "m1").await;
        let payer = other_payer("otherplan");
        let terms = Terms {
            concurrent: true,
            ..terms("SUB-1")
        };
        let asked = request(&store, "m1", "otherplan", terms, 1000)
            .await
            .unwrap();
        let after = run(&store, &store, &Answers, &payer, asked, 1000)
            .await
            .unwrap();
        assert_eq!(after.state, RequestState::Waiting);
        assert_eq!(after.received, 1);
        assert_eq!(after.next_attempt_at, 1000 + QUARTER_SECS);
        assert!(
            due(&store, 1000 + QUARTER_SECS - 1, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(due(&store, 1000 + QUARTER_SECS, 10).await.unwrap().len(), 1);
    }
}
