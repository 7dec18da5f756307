//! Export jobs in the key-value store, their work items, and the finish protocol.
//!
//! Records (all Gets and conditional writes on keys; nothing lists or scans):
//! * `bulk-job` / `{job}`: the [`Job`], with an expiry = the retention period, so a
//!   job and its manifest disappear with its files;
//! * `bulk-slice-{job}` / `{slice:06}` (and `{slice:06}-{page:06}` for the later
//!   pages of a roster slice): one slice's (page's) result, inserted once;
//! * `bulk-done` / `{job}`: a counter of finished slices.
//!
//! **Why a counter, not Step Functions.** A job is a fan-out of independent slices
//! with one join. An atomic counter plus an idempotent finish does the join with two
//! more writes per slice, runs the same locally (redb) and on AWS (DynamoDB), and
//! needs no state machine. The counter may over-count when a slice is retried after
//! it counted but before its message was deleted, so reaching the slice count only
//! *triggers* the finish, which then checks that every slice record exists; a
//! premature check does nothing, and the last slice to finish triggers it again.

use std::sync::Arc;

use fhir::ResourceType;
use fhir::clock::unix_now;
use fhir_store::KeyValueStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smart_auth::BoxFuture;

use crate::ExportError;
use crate::request::ExportRequest;

const JOBS: &str = "bulk-job";
/// Attempts per work item before the job is marked failed: the local queue's retries,
/// and on AWS the queue's `maxReceiveCount` (template.yaml), after which the message
/// goes to the dead-letter queue and its alarm fires.
pub const MAX_ATTEMPTS: u32 = 3;
const DONE: &str = "bulk-done";

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// What a job exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A Group's members at one version: a slice per 500-member chunk.
    Group { group_id: String, version: u64 },
    /// Every member (`/Patient/$export`): a slice per member-roster shard
    /// (`fhir_search::roster`), read `page_size` members at a time; each page queues
    /// the next.
    Roster { page_size: u32 },
    /// A Payer-to-Payer match Group (`$davinci-data-export`, [`crate::members`]): a
    /// slice per chunk; each member as their consent allows, under the plan's
    /// sensitive-code list and the dates of the request, both fixed at kick-off
    /// ([`crate::p2p`]).
    MatchGroup {
        group_id: String,
        sensitive: crate::sensitive::SensitivePolicy,
        window: crate::p2p::Window,
    },
    /// Payer-to-Payer `$bulk-member-match`: a slice per chunk of the request's
    /// members, matched by a [`crate::worker::JobRunner`] (the matching lives above
    /// this crate); the job's answer is its own, not a manifest.
    BulkMemberMatch { members: u32 },
}

/// One output file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The file key (the URL is built from it at status time).
    pub key: String,
    pub count: u64,
}

/// One export job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub client_id: String,
    pub source: Source,
    pub request: ExportRequest,
    /// The kick-off URL, echoed as the manifest's `request`.
    pub request_url: String,
    /// FHIR instant of kick-off: the manifest's `transactionTime`, and the `_since` a
    /// client uses next time.
    pub transaction_time: String,
    pub slices: u32,
    pub status: JobStatus,
    #[serde(default)]
    pub output: Vec<OutputFile>,
    #[serde(default)]
    pub error_files: Vec<OutputFile>,
    /// Why it failed (shown as an OperationOutcome; no PHI).
    #[serde(default)]
    pub failure: Option<String>,
    /// Unix seconds at which the job and its files expire.
    pub expires_at: i64,
}

/// A work item as queued (SQS message body, or a local task's argument).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub job_id: String,
    pub slice: u32,
    /// A roster slice's page (0 for the first and for every Group slice).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub page: u32,
    /// Where a roster page starts: the roster position the previous page ended at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl WorkItem {
    /// The first (for a Group slice, the only) page of a slice.
    pub fn new(job_id: impl Into<String>, slice: u32) -> WorkItem {
        WorkItem {
            job_id: job_id.into(),
            slice,
            page: 0,
            after: None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One NDJSON file a slice wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    pub resource_type: String,
    /// A slice's output of one type is split into files of at most
    /// [`crate::worker::MAX_PART_BYTES`]; this numbers them.
    pub seq: u32,
    pub count: u64,
}

/// What one slice wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceResult {
    /// Each file written (types with nothing to export write none).
    pub parts: Vec<Part>,
    /// Members left out because they opted out or their attribution does not cover today.
    pub skipped_members: u64,
    /// A roster page that queued the slice's next page: the slice is not done yet.
    #[serde(default)]
    pub more: bool,
}

/// The work queue: SQS on AWS, tokio tasks locally.
pub trait WorkQueue: Send + Sync {
    fn enqueue<'a>(&'a self, items: Vec<WorkItem>) -> BoxFuture<'a, Result<(), ExportError>>;
}

impl<Q: WorkQueue + ?Sized> WorkQueue for Arc<Q> {
    fn enqueue<'a>(&'a self, items: Vec<WorkItem>) -> BoxFuture<'a, Result<(), ExportError>> {
        (**self).enqueue(items)
    }
}

fn corrupt(e: impl std::fmt::Display) -> ExportError {
    ExportError::Corrupt(e.to_string())
}

fn slices_namespace(job_id: &str) -> String {
    format!("bulk-slice-{job_id}")
}

/// The key of one part: `{job}/{Type}-{slice:06}-{seq:03}.ndjson`, and
/// `{job}/{Type}-{slice:06}-p{page:06}-{seq:03}.ndjson` for a roster slice's later
/// pages. Fixed by job, type, slice, page and position, so a retried slice (page)
/// overwrites exactly its own files.
pub fn part_key(job_id: &str, resource_type: &str, slice: u32, page: u32, seq: u32) -> String {
    if page == 0 {
        format!("{job_id}/{resource_type}-{slice:06}-{seq:03}.ndjson")
    } else {
        format!("{job_id}/{resource_type}-{slice:06}-p{page:06}-{seq:03}.ndjson")
    }
}

fn slice_key(slice: u32, page: u32) -> String {
    if page == 0 {
        format!("{slice:06}")
    } else {
        format!("{slice:06}-{page:06}")
    }
}

/// A new job id: 128 random bits, hex (it appears in URLs and keys).
pub fn new_job_id() -> Result<String, ExportError> {
    secrets::random_hex(16).map_err(|_| ExportError::Corrupt("no secure random source".into()))
}

/// Stores a new job.
pub async fn create<K: KeyValueStore + ?Sized>(kv: &K, job: &Job) -> Result<(), ExportError> {
    let value = serde_json::to_value(job).map_err(corrupt)?;
    if !kv
        .insert(JOBS, &job.id, &value, Some(job.expires_at))
        .await?
    {
        return Err(ExportError::Corrupt("job id collision".into()));
    }
    Ok(())
}

/// The job, while it has not expired.
pub async fn get<K: KeyValueStore + ?Sized>(
    kv: &K,
    job_id: &str,
) -> Result<Option<(Job, u64)>, ExportError> {
    if job_id.is_empty()
        || job_id.len() > 64
        || !job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Ok(None);
    }
    match kv.get(JOBS, job_id).await? {
        Some(entry) => Ok(Some((
            serde_json::from_value(entry.value).map_err(corrupt)?,
            entry.version,
        ))),
        None => Ok(None),
    }
}

/// Applies `change` to the job with a version check, retrying on a concurrent write.
/// `change` returns false to leave the job as it is. Returns the job as stored.
pub async fn update<K: KeyValueStore + ?Sized>(
    kv: &K,
    job_id: &str,
    mut change: impl FnMut(&mut Job) -> bool,
) -> Result<Option<Job>, ExportError> {
    loop {
        let Some((mut job, version)) = get(kv, job_id).await? else {
            return Ok(None);
        };
        if !change(&mut job) {
            return Ok(Some(job));
        }
        let value = serde_json::to_value(&job).map_err(corrupt)?;
        if kv
            .replace(JOBS, job_id, version, &value, Some(job.expires_at))
            .await?
        {
            return Ok(Some(job));
        }
    }
}

/// Marks a running job failed with `reason` (shown to the client as an
/// OperationOutcome, so no PHI); a job already finished or cancelled stays as it is.
pub async fn fail<K: KeyValueStore + ?Sized>(
    kv: &K,
    job_id: &str,
    reason: &str,
) -> Result<(), ExportError> {
    update(kv, job_id, |j| {
        if j.status != JobStatus::Running {
            return false;
        }
        j.status = JobStatus::Failed;
        j.failure = Some(reason.to_owned());
        true
    })
    .await
    .map(|_| ())
}

/// What a client is told when a slice failed [`MAX_ATTEMPTS`] times.
pub const SLICE_FAILED: &str = "a part of the export failed repeatedly; start a new export";

/// Records a slice's (page's) result (once) and, for a slice's last page, counts
/// it; finishes the job when every slice is in. Safe to call again for a retry.
pub async fn slice_done<K: KeyValueStore + ?Sized>(
    kv: &K,
    job: &Job,
    item: &WorkItem,
    result: &SliceResult,
) -> Result<(), ExportError> {
    let value = serde_json::to_value(result).map_err(corrupt)?;
    let namespace = slices_namespace(&job.id);
    let key = slice_key(item.slice, item.page);
    // A retry after a crash finds its record already there; its parts were
    // overwritten with the same content, so the first record still describes them.
    kv.insert(&namespace, &key, &value, Some(job.expires_at))
        .await?;
    if result.more {
        return Ok(()); // the slice's next page counts it
    }
    let done = kv.increment(DONE, &job.id, 1, Some(job.expires_at)).await?;
    if done >= i64::from(job.slices) {
        finish(kv, job).await?;
    }
    Ok(())
}

/// Writes the manifest into the job if every slice has recorded its result.
pub async fn finish<K: KeyValueStore + ?Sized>(kv: &K, job: &Job) -> Result<(), ExportError> {
    let namespace = slices_namespace(&job.id);
    let mut output = Vec::new();
    for slice in 0..job.slices {
        let mut page = 0;
        loop {
            let Some(entry) = kv.get(&namespace, &slice_key(slice, page)).await? else {
                return Ok(()); // not yet: that slice's own completion finishes the job
            };
            let result: SliceResult = serde_json::from_value(entry.value).map_err(corrupt)?;
            for part in result.parts {
                output.push(OutputFile {
                    key: part_key(&job.id, &part.resource_type, slice, page, part.seq),
                    resource_type: part.resource_type,
                    count: part.count,
                });
            }
            if !result.more {
                break;
            }
            page += 1;
        }
    }
    // Order the manifest by type, then slice, as the request listed the types.
    // Provenance, which describes the others, comes last.
    let order = |t: &str| {
        job.request
            .types
            .iter()
            .position(|r| r.as_str() == t)
            .unwrap_or(usize::MAX)
    };
    output
        .sort_by(|a, b| (order(&a.resource_type), &a.key).cmp(&(order(&b.resource_type), &b.key)));
    let finished = update(kv, &job.id, |stored| {
        if stored.status != JobStatus::Running {
            return false;
        }
        stored.status = JobStatus::Completed;
        stored.output = output.clone();
        true
    })
    .await?;
    if finished.is_some_and(|j| j.status == JobStatus::Completed) {
        tracing::info!(target: "audit", job_id = %job.id, client_id = %job.client_id, files = output.len(), event = "bulk_export.completed", "bulk export completed");
    }
    Ok(())
}

/// How many slices have reported (for `X-Progress`).
pub async fn progress<K: KeyValueStore + ?Sized>(kv: &K, job: &Job) -> Result<i64, ExportError> {
    Ok(kv
        .get(DONE, &job.id)
        .await?
        .and_then(|e| e.value.as_i64())
        .unwrap_or(0)
        .min(i64::from(job.slices)))
}

/// The Bulk Data manifest of a completed job; file URLs under `files_base`.
pub fn manifest(job: &Job, files_base: &str) -> Value {
    let file = |f: &OutputFile| json!({"type": f.resource_type, "url": format!("{files_base}/{}", f.key), "count": f.count});
    json!({
        "transactionTime": job.transaction_time,
        "request": job.request_url,
        "requiresAccessToken": true,
        "output": job.output.iter().map(file).collect::<Vec<_>>(),
        "error": job.error_files.iter().map(file).collect::<Vec<_>>(),
    })
}

/// Seconds until `expires_at` (for logs and tests).
pub fn remaining(job: &Job) -> i64 {
    job.expires_at - unix_now()
}

/// Whether a resource type name is one an export writes.
pub fn is_export_type(name: &str) -> bool {
    crate::request::EXPORT_TYPES
        .iter()
        .any(|t: &ResourceType| t.as_str() == name)
}
