//! One slice of an export: read, filter, transform, write NDJSON parts.

use bytes::Bytes;
use fhir::ResourceType;
use fhir_store::{KeyValueStore, ListQuery, Partition, ResourceRecord, ResourceStore, SortKey};
use member_consent::provider_access::is_opted_out;
use serde_json::Value;

use crate::ExportError;
use crate::basis::{non_financial_eob, within_service_window};
use crate::files::ExportFiles;
use crate::job::{self, Job, JobStatus, Part, SliceResult, Source, WorkItem, WorkQueue, part_key};
use crate::request::ExportRequest;

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
    let mut timing = SliceTiming::default();
    let started = std::time::Instant::now();
    let (listed, mut patients, next) = match &job.source {
        Source::Group { group_id, version } => {
            let members = attribution::group::chunk(store, group_id, *version, item.slice).await?;
            let today = today();
            let patients: Vec<String> = members
                .iter()
                .filter(|m| m.covers(&today))
                .map(|m| m.patient.clone())
                .collect();
            (members.len(), patients, None)
        }
        Source::Roster { page_size } => {
            let (patients, next) = roster_page(store, item, *page_size).await?;
            (patients.len(), patients, next)
        }
    };
    patients.sort();
    patients.dedup();
    let mut result = SliceResult::default();
    let attributed = patients.len();
    let mut included = Vec::with_capacity(attributed);
    for patient in patients {
        // Checked when the slice runs: an opt-out made after kick-off still counts.
        if is_opted_out(store, &patient).await? {
            continue;
        }
        included.push(patient);
    }
    result.skipped_members = listed.saturating_sub(included.len()) as u64;
    timing.read += started.elapsed();
    for resource_type in &job.request.types {
        let mut writer = PartWriter::new(&job, item, *resource_type);
        for patient in &included {
            export_member(
                store,
                &job.request,
                *resource_type,
                patient,
                &mut writer,
                files,
                &mut timing,
            )
            .await?;
        }
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

async fn export_member<S, F>(
    store: &S,
    request: &ExportRequest,
    resource_type: ResourceType,
    patient: &str,
    writer: &mut PartWriter,
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
            writer
                .push(line(resource_type, &record, timing)?, files, timing)
                .await?;
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
            if let Some(text) = line(resource_type, record, timing)? {
                writer.push(Some(text), files, timing).await?;
            }
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
    resource_type: ResourceType,
    buffer: Vec<u8>,
    count: u64,
    parts: Vec<Part>,
}

impl PartWriter {
    fn new(job: &Job, item: &WorkItem, resource_type: ResourceType) -> PartWriter {
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
        let key = part_key(
            &self.job_id,
            self.resource_type.as_str(),
            self.slice,
            self.page,
            seq,
        );
        let body = Bytes::from(std::mem::take(&mut self.buffer));
        let started = std::time::Instant::now();
        timing.bytes += body.len() as u64;
        timing.resources += self.count;
        files.put(&key, body).await?;
        timing.write += started.elapsed();
        self.parts.push(Part {
            resource_type: self.resource_type.as_str().to_owned(),
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
