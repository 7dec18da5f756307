//! Loading the provider directory.
//!
//! Two input forms, one path: a FHIR NDJSON file (any of the nine Plan-Net profiles,
//! one resource per line, ids kept) or a roster CSV ([`roster`]) becomes a set of
//! resources; the whole set is validated; only a valid file is applied. Per file:
//!
//! 1. **Validate everything first, write nothing.** Lines over [`MAX_LINE_BYTES`],
//!    malformed JSON, unknown types, missing ids, duplicate ids, wrong CSV columns,
//!    the profile's required elements, NPI check digits, NUCC codes, US states and
//!    ZIPs, and references that resolve neither within the file nor (for a change
//!    set) in the directory. Any problem rejects the file, with a [`FileReport`]
//!    naming line, field and reason, and the directory is untouched.
//! 2. **Apply idempotently.** Each resource is written only when its content differs
//!    from the stored version (`fhir_store::update_with`, conditional on the version
//!    read), so re-applying a file converges and changes nothing the second time.
//! 3. **Snapshot or change set.** A change set only adds and updates. A snapshot is
//!    the whole directory: afterwards every current resource the file does not hold
//!    is *ended* by a deletion tombstone, which removes it from search (reads answer
//!    410 Gone; earlier versions stay readable by vread).
//! 4. **Freshness.** The load time is recorded ([`write_status`]) and the report lists
//!    resources not updated for the plan's threshold ([`LoadConfig::stale_after_days`]).
//!
//! A crash mid-apply leaves the resources written so far (each write is atomic) and
//! the rest as they were; the file is not marked done (the S3 ledger's claim goes
//! stale, the local inbox keeps the file), the retry re-applies the same file, skips
//! what already matches and finishes, ending exactly where a clean run ends.

mod csv;
mod object;
pub mod roster;
mod status;

pub use object::{ObjectLoadConfig, ObjectOutcome, load_object, mode_of};
pub use status::{DirectoryStatus, generation, read_status, write_status};

use std::collections::{HashMap, HashSet};

use fhir::{Instant, Reference, ResourceType};
use fhir_store::{
    KeyValueStore, ListQuery, Partition, ResourceRecord, ResourceStore, ResourceWrite, StoreError,
    WriteCondition, update_with,
};
use plan_net::checks::{check_resource, references};
use plan_net::profiles::stamp_profile;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Lines longer than this are refused (a Plan-Net resource is a few KB).
pub const MAX_LINE_BYTES: usize = 10 * 1024 * 1024;
/// The stale list in a report stops here (the count is still exact up to
/// [`STALE_COUNT_LIMIT`]).
const STALE_LISTED: usize = 100;
const STALE_COUNT_LIMIT: usize = 10_000;
const LIST_BATCH: usize = 500;
/// Resources applied per batch: one `get_many` per 100 and one `put_many` (locally one
/// redb write transaction, so one fsync per batch rather than per resource).
const APPLY_BATCH: usize = 500;
/// Keys per `get_many` call (DynamoDB's BatchGetItem takes 100).
const GET_BATCH: usize = 100;

/// The plan that owns the networks and insurance plans a roster names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanIdentity {
    pub organization_id: String,
    pub name: String,
}

impl PlanIdentity {
    /// The plan's Organization resource (Plan-Net Organization, type payer).
    pub fn organization(&self) -> Value {
        serde_json::json!({
            "resourceType": "Organization", "id": self.organization_id, "active": true,
            "type": [{"coding": [{"system": plan_net::profiles::ORG_TYPE_SYSTEM, "code": "payer", "display": "Payer"}]}],
            "name": self.name,
        })
    }
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub plan: PlanIdentity,
    /// Resources not updated for this many days are listed in the report.
    pub stale_after_days: u32,
}

/// What a file is: the whole directory, or changes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    ChangeSet,
    Snapshot,
}

/// One problem: the 1-based line (row) of the file, the field, a plain reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineProblem {
    pub line: usize,
    pub field: String,
    pub reason: String,
}

impl LineProblem {
    pub fn new(line: usize, field: impl Into<String>, reason: impl Into<String>) -> Self {
        LineProblem {
            line,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Applied,
    Rejected,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub resources: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Snapshot only: current resources the file no longer holds, now ended.
    pub ended: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stale {
    pub threshold_days: u32,
    /// How many (exact up to 10,000).
    pub count: usize,
    /// The first 100, as `Type/id lastUpdated`.
    pub resources: Vec<String>,
}

/// The JSON report of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    pub file: String,
    pub format: String,
    pub mode: Mode,
    pub status: FileStatus,
    pub counts: Counts,
    pub problems: Vec<LineProblem>,
    #[serde(default)]
    pub stale: Stale,
    pub loaded_at: String,
}

impl FileReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One line for a terminal.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        match self.status {
            FileStatus::Applied => format!(
                "{}: applied ({}, {}); resources {}: {} created, {} updated, {} unchanged, {} ended; {} stale",
                self.file,
                self.format,
                match self.mode {
                    Mode::Snapshot => "snapshot",
                    Mode::ChangeSet => "change set",
                },
                c.resources,
                c.created,
                c.updated,
                c.unchanged,
                c.ended,
                self.stale.count
            ),
            FileStatus::Rejected => format!(
                "{}: rejected, nothing changed; {} problem(s), first: line {} {}: {}",
                self.file,
                self.problems.len(),
                self.problems.first().map_or(0, |p| p.line),
                self.problems.first().map_or("", |p| p.field.as_str()),
                self.problems.first().map_or("", |p| p.reason.as_str()),
            ),
        }
    }
}

/// A validated resource: where it came from, and its content.
struct Item {
    line: usize,
    resource_type: ResourceType,
    id: String,
    body: Value,
}

/// Loads one file (its name decides the format: `.ndjson`/`.jsonl` or `.csv`).
/// Errors are storage failures only; bad input is a rejected report.
pub async fn load_file<S>(
    store: &S,
    name: &str,
    bytes: &[u8],
    mode: Mode,
    config: &LoadConfig,
) -> Result<FileReport, StoreError>
where
    S: ResourceStore + KeyValueStore,
{
    let lower = name.to_ascii_lowercase();
    let format = if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
        "ndjson"
    } else if lower.ends_with(".csv") {
        "csv"
    } else {
        "unknown"
    };
    let mut report = FileReport {
        file: name.to_owned(),
        format: format.to_owned(),
        mode,
        status: FileStatus::Rejected,
        counts: Counts::default(),
        problems: Vec::new(),
        stale: Stale {
            threshold_days: config.stale_after_days,
            ..Stale::default()
        },
        loaded_at: Instant::now().to_string(),
    };
    let (lines, mut problems) = split_lines(bytes);
    let items = match format {
        "ndjson" => ndjson_items(&lines, &mut problems),
        "csv" => match roster::read(&lines, &config.plan) {
            Ok(r) => r
                .resources
                .into_iter()
                .map(|((t, id), (line, body))| Item {
                    line,
                    resource_type: t,
                    id,
                    body,
                })
                .collect(),
            Err(p) => {
                problems.extend(p);
                Vec::new()
            }
        },
        _ => {
            problems.push(LineProblem::new(
                0,
                "file",
                "unknown file type: name it .ndjson (FHIR, one resource per line) or .csv (roster)",
            ));
            Vec::new()
        }
    };
    for item in &items {
        for p in check_resource(item.resource_type, &item.body) {
            problems.push(LineProblem::new(item.line, p.field, p.reason));
        }
    }
    problems.extend(check_references(store, &items, mode).await?);
    problems.sort_by_key(|p| p.line);
    if !problems.is_empty() {
        report.problems = problems;
        return Ok(report);
    }
    report.counts.resources = items.len();
    let keep: HashSet<(ResourceType, String)> = match mode {
        Mode::Snapshot => items
            .iter()
            .map(|i| (i.resource_type, i.id.clone()))
            .collect(),
        Mode::ChangeSet => HashSet::new(),
    };
    let mut items = items.into_iter();
    loop {
        let batch: Vec<Item> = items.by_ref().take(APPLY_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        apply_batch(store, batch, &mut report.counts).await?;
    }
    if mode == Mode::Snapshot {
        report.counts.ended = end_absent(store, &keep).await?;
    }
    report.status = FileStatus::Applied;
    report.stale = stale(store, config.stale_after_days).await?;
    write_status(
        store,
        &DirectoryStatus {
            last_loaded: report.loaded_at.clone(),
            source: name.to_owned(),
        },
    )
    .await?;
    tracing::info!(
        file = name,
        resources = report.counts.resources,
        "directory file applied"
    );
    Ok(report)
}

/// Lines with their 1-based numbers; over-long and non-UTF-8 lines become problems.
fn split_lines(bytes: &[u8]) -> (Vec<(usize, &str)>, Vec<LineProblem>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if raw.len() > MAX_LINE_BYTES {
            problems.push(LineProblem::new(
                n,
                "line",
                format!("is longer than {} MiB", MAX_LINE_BYTES >> 20),
            ));
            continue;
        }
        match std::str::from_utf8(raw) {
            Ok(text) => lines.push((n, text.strip_suffix('\r').unwrap_or(text))),
            Err(_) => problems.push(LineProblem::new(n, "line", "is not valid UTF-8")),
        }
    }
    (lines, problems)
}

fn ndjson_items(lines: &[(usize, &str)], problems: &mut Vec<LineProblem>) -> Vec<Item> {
    let mut items = Vec::new();
    let mut seen: HashMap<(ResourceType, String), usize> = HashMap::new();
    for (line, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(LineProblem::new(
                    *line,
                    "line",
                    format!("is not valid JSON: {e}"),
                ));
                continue;
            }
        };
        let type_name = value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(resource_type) = type_name
            .parse::<ResourceType>()
            .ok()
            .filter(|t| ResourceType::PLAN_NET.contains(t))
        else {
            problems.push(LineProblem::new(
                *line,
                "resourceType",
                format!("'{type_name}' is not one of the directory's types (Endpoint, HealthcareService, InsurancePlan, Location, Organization, OrganizationAffiliation, Practitioner, PractitionerRole)"),
            ));
            continue;
        };
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !fhir::is_valid_id(&id) {
            problems.push(LineProblem::new(*line, "id", format!("'{id}' is not a valid id; directory resources keep the ids they are loaded with")));
            continue;
        }
        if let Some(first) = seen.insert((resource_type, id.clone()), *line) {
            problems.push(LineProblem::new(
                *line,
                "id",
                format!("{resource_type}/{id} is also on line {first}"),
            ));
            continue;
        }
        items.push(Item {
            line: *line,
            resource_type,
            id,
            body: value,
        });
    }
    items
}

/// Every reference must resolve within the file, or (change set only) to a current
/// resource of the directory.
async fn check_references<S: ResourceStore>(
    store: &S,
    items: &[Item],
    mode: Mode,
) -> Result<Vec<LineProblem>, StoreError> {
    let in_file: HashSet<(ResourceType, &str)> = items
        .iter()
        .map(|i| (i.resource_type, i.id.as_str()))
        .collect();
    let mut known: HashMap<Reference, bool> = HashMap::new();
    let mut problems = Vec::new();
    for item in items {
        let (refs, bad) = references(item.resource_type, &item.body);
        problems.extend(
            bad.into_iter()
                .map(|p| LineProblem::new(item.line, p.field, p.reason)),
        );
        for (field, reference) in refs {
            if in_file.contains(&(reference.resource_type, reference.id.as_str())) {
                continue;
            }
            let resolves = match mode {
                Mode::Snapshot => false,
                Mode::ChangeSet => match known.get(&reference) {
                    Some(found) => *found,
                    None => {
                        let found =
                            ResourceStore::get(store, reference.resource_type, &reference.id)
                                .await?
                                .is_some_and(|r| !r.deleted);
                        known.insert(reference.clone(), found);
                        found
                    }
                },
            };
            if !resolves {
                let whence = match mode {
                    Mode::Snapshot => "in this snapshot",
                    Mode::ChangeSet => "in this file or in the directory",
                };
                problems.push(LineProblem::new(
                    item.line,
                    field,
                    format!("{} does not resolve {whence}", reference.relative()),
                ));
            }
        }
    }
    Ok(problems)
}

/// The resource as we store it: the Plan-Net profile stamped, the store's own meta
/// fields left to the store.
fn prepared(item: &mut Item) {
    if let Some(meta) = item.body.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
    }
    stamp_profile(item.resource_type, &mut item.body);
}

/// Content without `meta.versionId`/`meta.lastUpdated`, for "has it changed?".
fn content(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("versionId");
        meta.remove("lastUpdated");
    }
    v
}

/// The current records of `keys` (tombstones included), by key.
async fn current_records<S: ResourceStore>(
    store: &S,
    keys: &[(ResourceType, String)],
) -> Result<HashMap<(ResourceType, String), ResourceRecord>, StoreError> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(GET_BATCH) {
        for record in store.get_many(chunk).await? {
            out.insert((record.resource_type, record.id.clone()), record);
        }
    }
    Ok(out)
}

/// Applies a batch as [`apply`] applies one resource: the current versions read in
/// batches, the changed resources written with one `put_many`, each conditional on the
/// version read. A write that loses to a concurrent writer is applied again on its
/// own by [`apply`], which re-reads and retries.
async fn apply_batch<S: ResourceStore>(
    store: &S,
    mut batch: Vec<Item>,
    counts: &mut Counts,
) -> Result<(), StoreError> {
    for item in &mut batch {
        prepared(item);
    }
    let keys: Vec<(ResourceType, String)> = batch
        .iter()
        .map(|i| (i.resource_type, i.id.clone()))
        .collect();
    let current = current_records(store, &keys).await?;
    let mut writes = Vec::new();
    let mut written = Vec::new();
    for item in batch {
        let found = current.get(&(item.resource_type, item.id.clone()));
        if let Some(r) = found.filter(|r| !r.deleted)
            && serde_json::from_str::<Value>(&r.body).is_ok_and(|b| content(&b) == item.body)
        {
            counts.unchanged += 1;
            continue;
        }
        writes.push(ResourceWrite {
            resource_type: item.resource_type,
            id: item.id.clone(),
            index: plan_net::index_directory_resource(item.resource_type, &item.body),
            resource: item.body.clone(),
            deleted: false,
            condition: match found {
                Some(r) => WriteCondition::VersionIs(r.version_id),
                None => WriteCondition::Absent,
            },
        });
        written.push((item, found.is_some()));
    }
    let outcomes = store.put_many(writes).await?;
    for ((item, existed), outcome) in written.into_iter().zip(outcomes) {
        match outcome {
            Ok(_) if existed => counts.updated += 1,
            Ok(_) => counts.created += 1,
            Err(StoreError::Conflict { .. }) => apply_prepared(store, item, counts).await?,
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

async fn apply_prepared<S: ResourceStore>(
    store: &S,
    item: Item,
    counts: &mut Counts,
) -> Result<(), StoreError> {
    let index = plan_net::index_directory_resource(item.resource_type, &item.body);
    let mut outcome = None;
    update_with(store, item.resource_type, &item.id, |current| {
        let stored = current.filter(|r| !r.deleted);
        if let Some(r) = stored
            && serde_json::from_str::<Value>(&r.body).is_ok_and(|b| content(&b) == item.body)
        {
            outcome = Some(0);
            return None;
        }
        outcome = Some(if current.is_some() { 2 } else { 1 });
        Some(ResourceWrite {
            resource_type: item.resource_type,
            id: item.id.clone(),
            resource: item.body.clone(),
            index: index.clone(),
            deleted: false,
            condition: WriteCondition::Absent,
        })
    })
    .await?;
    match outcome {
        Some(0) => counts.unchanged += 1,
        Some(1) => counts.created += 1,
        _ => counts.updated += 1,
    }
    Ok(())
}

/// Ends (tombstones) every current directory resource a snapshot does not hold, in
/// batches written with `put_many` (each conditional on the version listed); one
/// that changed meanwhile is ended on its own, re-read and retried.
async fn end_absent<S: ResourceStore>(
    store: &S,
    keep: &HashSet<(ResourceType, String)>,
) -> Result<usize, StoreError> {
    let mut ended = 0;
    for resource_type in ResourceType::PLAN_NET {
        let mut absent = Vec::new();
        for_each_current(store, resource_type, None, |r| {
            if !keep.contains(&(r.resource_type, r.id.clone())) {
                absent.push((
                    r.id.clone(),
                    r.version_id,
                    serde_json::from_str(&r.body).unwrap_or(Value::Null),
                ));
            }
            true
        })
        .await?;
        let mut retry = Vec::new();
        let mut absent = absent.into_iter();
        loop {
            let batch: Vec<(String, u64, Value)> = absent.by_ref().take(APPLY_BATCH).collect();
            if batch.is_empty() {
                break;
            }
            let writes = batch
                .iter()
                .map(|(id, version, body)| ResourceWrite {
                    resource_type,
                    id: id.clone(),
                    resource: body.clone(),
                    index: Default::default(),
                    deleted: true,
                    condition: WriteCondition::VersionIs(*version),
                })
                .collect();
            for ((id, _, _), outcome) in batch.into_iter().zip(store.put_many(writes).await?) {
                match outcome {
                    Ok(_) => ended += 1,
                    Err(StoreError::Conflict { .. }) => retry.push(id),
                    Err(other) => return Err(other),
                }
            }
        }
        for id in retry {
            update_with(store, resource_type, &id, |current| {
                let current = current.filter(|r| !r.deleted)?;
                Some(ResourceWrite {
                    resource_type,
                    id: id.clone(),
                    resource: serde_json::from_str(&current.body).unwrap_or(Value::Null),
                    index: Default::default(),
                    deleted: true,
                    condition: WriteCondition::Absent,
                })
            })
            .await?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// Calls `visit` for each current resource of a type (one Query per 500), oldest
/// first, optionally only those last updated before `before`; stops when `visit`
/// says so.
async fn for_each_current<S: ResourceStore>(
    store: &S,
    resource_type: ResourceType,
    before: Option<Instant>,
    mut visit: impl FnMut(&ResourceRecord) -> bool,
) -> Result<(), StoreError> {
    let mut after = None;
    loop {
        let mut query = ListQuery::new(Partition::Type(resource_type), LIST_BATCH);
        query.after = after;
        query.last_updated_to = before.clone();
        let page = store.list(query).await?;
        for (_, record) in &page.entries {
            if !visit(record) {
                return Ok(());
            }
        }
        after = page.entries.last().map(|(k, _)| k.clone());
        if !page.more {
            return Ok(());
        }
    }
}

/// Resources last updated more than `days` ago: a range Query on each type
/// partition (sorted by lastUpdated), so only stale entries are read.
async fn stale<S: ResourceStore>(store: &S, days: u32) -> Result<Stale, StoreError> {
    let cutoff =
        Instant::from_unix_millis(Instant::now().unix_millis() - i64::from(days) * 86_400_000);
    let mut stale = Stale {
        threshold_days: days,
        ..Stale::default()
    };
    for resource_type in ResourceType::PLAN_NET {
        for_each_current(store, resource_type, cutoff.clone(), |r| {
            stale.count += 1;
            if stale.resources.len() < STALE_LISTED {
                stale
                    .resources
                    .push(format!("{}/{} {}", r.resource_type, r.id, r.last_updated));
            }
            stale.count < STALE_COUNT_LIMIT
        })
        .await?;
    }
    Ok(stale)
}
