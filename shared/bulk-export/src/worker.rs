//! One slice of an export: read, filter, transform, write NDJSON parts.

use bytes::Bytes;
use fhir::ResourceType;
use fhir_store::{KeyValueStore, ListQuery, Partition, ResourceRecord, ResourceStore, SortKey};
use member_consent::provider_access::is_opted_out;
use serde_json::Value;
use smart_auth::BoxFuture;

use crate::ExportError;
use crate::basis::{non_financial_eob, within_service_window};
use crate::files::ExportFiles;
use crate::job::{self, Job, JobStatus, Part, SliceResult, Source, WorkItem, WorkQueue, part_key};
use crate::p2p::{ConsentPolicy, Window, provenance, shared_form};
use crate::request::ExportRequest;
use crate::sensitive::SensitivePolicy;

/// The file type of the Provenance a Payer-to-Payer export writes.
const PROVENANCE: &str = "Provenance";

/// A part file is closed at this size and the next one begun, so a slice's memory
/// stays bounded whatever its members' history (and each file is one S3 PutObject
/// or multipart upload of a known, small size).
pub const MAX_PART_BYTES: usize = 8 * 1024 * 1024;
/// Records per store page while reading a member's compartment.
const PAGE: usize = 100;
/// Members per page of a roster slice: the size of a Group slice, so a page's work
/// (and a worker invocation's time) is the same whichever way a job was started.
pub const ROSTER_PAGE: usize = attribution::group::CHUNK_SIZE;

/// Counts of one run, for the benchmark: time in store reads vs. in transforming and
/// serialising.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SliceTiming {
    pub read: std::time::Duration,
    pub transform: std::time::Duration,
    pub write: std::time::Duration,
    pub resources: u64,
    pub bytes: u64,
}

/// Runs the slices of jobs that are not exports (Payer-to-Payer's
/// `$bulk-member-match`, whose matching lives in a crate above this one): given to
/// the workers ([`run_item`]) by whoever starts them.
pub trait JobRunner: Send + Sync {
    /// Does the slice's work and records its result (once); [`run_item`] then counts
    /// it towards the job.
    fn run<'a>(
        &'a self,
        job: &'a Job,
        item: &'a WorkItem,
    ) -> BoxFuture<'a, Result<(), ExportError>>;
}

/// Runs one work item of any job: an export slice ([`run_slice`]), or the slice of a
/// job that `runner` runs. Without a runner such a slice fails (and so, after its
/// retries, its job).
pub async fn run_item<S, F, Q>(
    store: &S,
    files: &F,
    queue: &Q,
    runner: Option<&dyn JobRunner>,
    item: &WorkItem,
) -> Result<SliceTiming, ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
    F: ExportFiles + ?Sized,
    Q: WorkQueue + ?Sized,
{
    let Some((job, _)) = job::get(store, &item.job_id).await? else {
        return Ok(SliceTiming::default());
    };
    if job.status != JobStatus::Running || item.slice >= job.slices {
        return Ok(SliceTiming::default());
    }
    if !matches!(job.source, Source::BulkMemberMatch { .. }) {
        return export_slice(store, files, queue, job, item).await;
    }
    let runner = runner.ok_or_else(|| ExportError::Corrupt("no runner for this job".into()))?;
    runner.run(&job, item).await?;
    job::slice_done(store, &job, item, &SliceResult::default()).await?;
    Ok(SliceTiming::default())
}

/// Runs one work item. `Ok` also when the job is gone or no longer running (the item
/// is then simply dropped); `Err` means "retry this item". A roster page that is not
/// its slice's last queues the next page on `queue` before it records itself, so a
/// crash in between queues it again (a duplicate page rewrites the same files).
pub async fn run_slice<S, F, Q>(
    store: &S,
    files: &F,
    queue: &Q,
    item: &WorkItem,
) -> Result<SliceTiming, ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
    F: ExportFiles + ?Sized,
    Q: WorkQueue + ?Sized,
{
    let Some((job, _)) = job::get(store, &item.job_id).await? else {
        return Ok(SliceTiming::default());
    };
    if job.status != JobStatus::Running || item.slice >= job.slices {
        return Ok(SliceTiming::default());
    }
    export_slice(store, files, queue, job, item).await
}

/// [`run_slice`] of a running job, read.
async fn export_slice<S, F, Q>(
    store: &S,
    files: &F,
    queue: &Q,
    job: Job,
    item: &WorkItem,
) -> Result<SliceTiming, ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
    F: ExportFiles + ?Sized,
    Q: WorkQueue + ?Sized,
{
    let mut timing = SliceTiming::default();
    let started = std::time::Instant::now();
    let (listed, included, next) = slice_members(store, &job.source, item).await?;
    let mut result = SliceResult {
        skipped_members: listed.saturating_sub(included.len()) as u64,
        ..SliceResult::default()
    };
    timing.read += started.elapsed();
    if matches!(job.source, Source::MatchGroup { .. }) {
        // Whose data goes to which other plan: one audit line per member sent.
        for (patient, _) in &included {
            tracing::info!(target: "audit", job_id = %job.id, client_id = %job.client_id, patient = %patient, slice = item.slice, event = "bulk_export.member_shared", "member data shared with another plan");
        }
    }
    let sharing = match &job.source {
        Source::MatchGroup {
            sensitive, window, ..
        } => Some((sensitive, window)),
        _ => None,
    };
    let mut provenance = job
        .request
        .provenance
        .then(|| PartWriter::new(&job, item, PROVENANCE));
    for resource_type in &job.request.types {
        let mut writer = PartWriter::new(&job, item, resource_type.as_str());
        for (patient, policy) in &included {
            let share = sharing
                .zip(*policy)
                .map(|((sensitive, window), policy)| Share {
                    policy,
                    sensitive,
                    window,
                    recorded: &job.transaction_time,
                });
            let mut out = Output {
                writer: &mut writer,
                provenance: provenance.as_mut(),
                share,
            };
            export_member(
                store,
                &job.request,
                *resource_type,
                patient,
                &mut out,
                files,
                &mut timing,
            )
            .await?;
        }
        writer.close(files, &mut timing).await?;
        result.parts.extend(writer.parts);
    }
    if let Some(mut writer) = provenance {
        writer.close(files, &mut timing).await?;
        result.parts.extend(writer.parts);
    }
    // A cancel that raced this slice deleted the job's files before ours landed:
    // delete again so nothing outlives the cancel.
    if !matches!(job::get(store, &job.id).await?, Some((j, _)) if j.status == JobStatus::Running) {
        files.delete_job(&job.id).await?;
        return Ok(timing);
    }
    if let Some(after) = next {
        queue
            .enqueue(vec![WorkItem {
                job_id: job.id.clone(),
                slice: item.slice,
                page: item.page + 1,
                after: Some(after),
            }])
            .await?;
        result.more = true;
    }
    job::slice_done(store, &job, item, &result).await?;
    Ok(timing)
}

/// A slice's members, each with the consent policy that limits what is sent (match
/// Groups only): how many were listed, the ones to export now, and where a roster
/// slice's next page starts. Checked when the slice runs, so an opt-out (or a
/// Payer-to-Payer opt-in taken back, or a consent that ended) after kick-off counts.
async fn slice_members<S>(
    store: &S,
    source: &Source,
    item: &WorkItem,
) -> Result<(usize, Vec<(String, Option<ConsentPolicy>)>, Option<String>), ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let today = today();
    let (listed, mut members, next) = match source {
        Source::Group { group_id, version } => {
            let members = attribution::group::chunk(store, group_id, *version, item.slice).await?;
            let patients: Vec<(String, Option<ConsentPolicy>)> = members
                .iter()
                .filter(|m| m.covers(&today))
                .map(|m| (m.patient.clone(), None))
                .collect();
            (members.len(), patients, None)
        }
        Source::Roster { page_size } => {
            let (patients, next) = roster_page(store, item, *page_size).await?;
            let patients = patients.into_iter().map(|p| (p, None)).collect::<Vec<_>>();
            (patients.len(), patients, next)
        }
        Source::BulkMemberMatch { .. } => {
            return Err(ExportError::Corrupt("not an export job".into()));
        }
        Source::MatchGroup { group_id, .. } => {
            let members = crate::members::chunk(store, group_id, item.slice).await?;
            let patients = members
                .iter()
                .filter(|m| m.consent_holds(&today))
                .map(|m| (m.patient.clone(), Some(m.policy)))
                .collect();
            (members.len(), patients, None)
        }
    };
    members.sort_by(|a, b| a.0.cmp(&b.0));
    members.dedup_by(|a, b| a.0 == b.0);
    let mut included = Vec::with_capacity(members.len());
    for (patient, policy) in members {
        let shared = match source {
            // Payer-to-Payer is off unless the member opted in.
            Source::MatchGroup { .. } => {
                member_consent::payer_to_payer::is_opted_in(store, &patient).await?
            }
            _ => !is_opted_out(store, &patient).await?,
        };
        if shared {
            included.push((patient, policy));
        }
    }
    Ok((listed, included, next))
}

/// One page of a roster shard: the member ids, and where the next page starts when
/// there is one. One Query of the shard's look-up partition, never a Scan.
async fn roster_page<S>(
    store: &S,
    item: &WorkItem,
    page_size: u32,
) -> Result<(Vec<String>, Option<String>), ExportError>
where
    S: ResourceStore + ?Sized,
{
    let mut query = ListQuery::new(
        Partition::Lookup {
            resource_type: ResourceType::Patient,
            param: fhir_search::roster::param(item.slice),
            prefix: String::new(),
        },
        (page_size as usize).clamp(1, ROSTER_PAGE),
    );
    query.after = item.after.clone().map(SortKey);
    let page = ResourceStore::list(store, query).await?;
    let next = match (page.more, page.entries.last()) {
        (true, Some((SortKey(key), _))) => Some(key.clone()),
        _ => None,
    };
    let patients = page
        .entries
        .into_iter()
        .filter(|(_, record)| !record.deleted)
        .map(|(_, record)| record.id)
        .collect();
    Ok((patients, next))
}

/// The Payer-to-Payer rule a match Group's member is exported under.
#[derive(Clone, Copy)]
struct Share<'a> {
    policy: ConsentPolicy,
    sensitive: &'a SensitivePolicy,
    window: &'a Window,
    /// The job's transaction time: each Provenance's `recorded`.
    recorded: &'a str,
}

/// Where one member's resources of one type go.
struct Output<'a> {
    writer: &'a mut PartWriter,
    /// Payer-to-Payer: a Provenance for each resource written.
    provenance: Option<&'a mut PartWriter>,
    share: Option<Share<'a>>,
}

impl Output<'_> {
    async fn push<F: ExportFiles + ?Sized>(
        &mut self,
        resource_type: ResourceType,
        record: &ResourceRecord,
        files: &F,
        timing: &mut SliceTiming,
    ) -> Result<(), ExportError> {
        let Some(share) = self.share else {
            let text = line(resource_type, record, timing)?;
            return self.writer.push(text, files, timing).await;
        };
        let started = std::time::Instant::now();
        let corrupt = |e: serde_json::Error| {
            ExportError::Corrupt(format!("{resource_type}/{}: {e}", record.id))
        };
        let stored: Value = serde_json::from_str(&record.body).map_err(corrupt)?;
        let Some(sent) = shared_form(
            resource_type,
            stored,
            share.policy,
            share.sensitive,
            share.window,
        ) else {
            timing.transform += started.elapsed();
            return Ok(());
        };
        let text = serde_json::to_string(&sent).map_err(corrupt)?;
        let provenance = match provenance(&sent, share.recorded) {
            Some(p) => Some(serde_json::to_string(&p).map_err(corrupt)?),
            None => None,
        };
        timing.transform += started.elapsed();
        self.writer.push(Some(text), files, timing).await?;
        if let Some(writer) = self.provenance.as_deref_mut() {
            writer.push(provenance, files, timing).await?;
        }
        Ok(())
    }
}

async fn export_member<S, F>(
    store: &S,
    request: &ExportRequest,
    resource_type: ResourceType,
    patient: &str,
    out: &mut Output<'_>,
    files: &F,
    timing: &mut SliceTiming,
) -> Result<(), ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
    F: ExportFiles + ?Sized,
{
    let since = request.since_instant();
    let filters = request.filters_for(resource_type);
    let keep = |record: &ResourceRecord| {
        !record.deleted
            && since.as_ref().is_none_or(|s| record.last_updated > *s)
            && (filters.is_empty()
                || filters
                    .iter()
                    .any(|f| f.matches(&record.id, &record.last_updated, &record.index)))
    };
    if resource_type == ResourceType::Patient {
        let started = std::time::Instant::now();
        let record = ResourceStore::get(store, ResourceType::Patient, patient).await?;
        timing.read += started.elapsed();
        if let Some(record) = record.filter(|r| keep(r)) {
            out.push(resource_type, &record, files, timing).await?;
        }
        return Ok(());
    }
    let mut query = ListQuery::new(
        Partition::Compartment {
            patient: patient.to_owned(),
            resource_type,
        },
        PAGE,
    );
    query.last_updated_from = since.clone();
    loop {
        let started = std::time::Instant::now();
        let page = ResourceStore::list(store, query.clone()).await?;
        timing.read += started.elapsed();
        for (_, record) in page.entries.iter().filter(|(_, r)| keep(r)) {
            out.push(resource_type, record, files, timing).await?;
        }
        match (page.more, page.entries.last()) {
            (true, Some((key, _))) => query.after = Some(key.clone()),
            _ => return Ok(()),
        }
    }
}

/// The NDJSON line of a record, or `None` when it is outside what is shared.
fn line(
    resource_type: ResourceType,
    record: &ResourceRecord,
    timing: &mut SliceTiming,
) -> Result<Option<String>, ExportError> {
    let started = std::time::Instant::now();
    let corrupt =
        |e: serde_json::Error| ExportError::Corrupt(format!("{resource_type}/{}: {e}", record.id));
    let text = match resource_type {
        ResourceType::ExplanationOfBenefit => {
            let eob: Value = serde_json::from_str(&record.body).map_err(corrupt)?;
            if !within_service_window(&eob) {
                timing.transform += started.elapsed();
                return Ok(None);
            }
            serde_json::to_string(&non_financial_eob(eob)).map_err(corrupt)?
        }
        // Coverage.costToBeneficiary is the member's cost-sharing: not shared.
        ResourceType::Coverage if record.body.contains("\"costToBeneficiary\"") => {
            let mut coverage: Value = serde_json::from_str(&record.body).map_err(corrupt)?;
            if let Some(object) = coverage.as_object_mut() {
                object.remove("costToBeneficiary");
            }
            serde_json::to_string(&coverage).map_err(corrupt)?
        }
        // Stored bodies are compact JSON already; re-serialise only if one is not.
        _ if record.body.contains('\n') => {
            let value: Value = serde_json::from_str(&record.body).map_err(corrupt)?;
            serde_json::to_string(&value).map_err(corrupt)?
        }
        _ => record.body.to_string(),
    };
    timing.transform += started.elapsed();
    Ok(Some(text))
}

/// Accumulates one type's lines of one slice into numbered parts.
struct PartWriter {
    job_id: String,
    slice: u32,
    page: u32,
    /// The file's type (a resource type, or Provenance).
    resource_type: &'static str,
    buffer: Vec<u8>,
    count: u64,
    parts: Vec<Part>,
}

impl PartWriter {
    fn new(job: &Job, item: &WorkItem, resource_type: &'static str) -> PartWriter {
        PartWriter {
            job_id: job.id.clone(),
            slice: item.slice,
            page: item.page,
            resource_type,
            buffer: Vec::new(),
            count: 0,
            parts: Vec::new(),
        }
    }

    async fn push<F: ExportFiles + ?Sized>(
        &mut self,
        text: Option<String>,
        files: &F,
        timing: &mut SliceTiming,
    ) -> Result<(), ExportError> {
        let Some(text) = text else {
            return Ok(());
        };
        if !self.buffer.is_empty() && self.buffer.len() + text.len() + 1 > MAX_PART_BYTES {
            self.close(files, timing).await?;
        }
        self.buffer.extend_from_slice(text.as_bytes());
        self.buffer.push(b'\n');
        self.count += 1;
        Ok(())
    }

    async fn close<F: ExportFiles + ?Sized>(
        &mut self,
        files: &F,
        timing: &mut SliceTiming,
    ) -> Result<(), ExportError> {
        if self.count == 0 {
            return Ok(());
        }
        let seq = u32::try_from(self.parts.len()).unwrap_or(u32::MAX);
        let key = part_key(&self.job_id, self.resource_type, self.slice, self.page, seq);
        let body = Bytes::from(std::mem::take(&mut self.buffer));
        let started = std::time::Instant::now();
        timing.bytes += body.len() as u64;
        timing.resources += self.count;
        files.put(&key, body).await?;
        timing.write += started.elapsed();
        self.parts.push(Part {
            resource_type: self.resource_type.to_owned(),
            seq,
            count: self.count,
        });
        self.count = 0;
        Ok(())
    }
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
