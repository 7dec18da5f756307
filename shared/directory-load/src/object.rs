//! A directory file in an object store (the EDI bucket's `directory/` prefix on AWS),
//! loaded under the same ledger as X12 files: `edi_ingest::run_ledgered` claims it
//! (a duplicate event or a re-sent file changes nothing), [`load_file`] applies it
//! all or nothing, the JSON report goes where the store puts reports
//! (`reports/<key>.json`), the source is marked processed or rejected, and the
//! ledger records it last. Errors carry `edi_ingest`'s retry classification, so the
//! function's dead-letter handling is the X12 one.

use edi_ingest::{
    Disposition, IngestError, Ledgered, ObjectError, ObjectStore, Totals, WriteCounts, run_ledgered,
};
use fhir_store::{KeyValueStore, ResourceStore};

use crate::{Counts, FileReport, FileStatus, LineProblem, LoadConfig, Mode, Stale, load_file};

/// Settings of loading from an object store.
#[derive(Debug, Clone)]
pub struct ObjectLoadConfig {
    pub load: LoadConfig,
    /// Larger objects are refused with a report, before they are read. A directory
    /// file is parsed whole, so this bounds the function's memory.
    pub max_file_bytes: usize,
    /// An in-progress ledger claim older than this is taken over (above the timeout).
    pub stale_after_secs: i64,
}

/// What came of one object.
#[derive(Debug)]
pub enum ObjectOutcome {
    /// This run loaded (or refused) the file.
    Loaded(Box<FileReport>),
    /// The ledger says it was loaded before: nothing was done.
    AlreadyDone(Disposition),
}

/// A file named `*.snapshot.csv` / `*.snapshot.ndjson` is a full snapshot; anything
/// else a change set.
pub fn mode_of(name: &str) -> Mode {
    if name.contains(".snapshot.") {
        Mode::Snapshot
    } else {
        Mode::ChangeSet
    }
}

/// Loads the object `key` of `objects` into `store`, under `store`'s ledger.
pub async fn load_object<S, O>(
    store: &S,
    objects: &O,
    key: &str,
    config: &ObjectLoadConfig,
) -> Result<ObjectOutcome, IngestError>
where
    S: ResourceStore + KeyValueStore,
    O: ObjectStore,
{
    let object = match objects.get(key, config.max_file_bytes).await {
        Ok(object) => object,
        Err(ObjectError::TooLarge { size, .. }) => {
            // Not claimed: writing the same refusal twice is harmless.
            let report = too_large(key, size, config);
            write_report(objects, key, &report).await?;
            return Ok(ObjectOutcome::Loaded(Box::new(report)));
        }
        Err(e) => return Err(e.into()),
    };
    let identity = object.identity.clone();
    let ledgered = run_ledgered(
        store,
        &identity,
        config.stale_after_secs,
        |_resumed| async move {
            let bytes = object.to_bytes().map_err(|e| {
                IngestError::Objects(ObjectError::Backend(format!(
                    "reading the local copy of {}: {e}",
                    object.identity.label()
                )))
            })?;
            let report = load_file(store, key, &bytes, mode_of(key), &config.load)
                .await
                .map_err(|source| IngestError::Store {
                    file: object.identity.label().to_owned(),
                    source,
                })?;
            write_report(objects, key, &report).await?;
            Ok(report)
        },
        |report| (disposition(report), totals(&report.counts)),
    )
    .await?;
    Ok(match ledgered {
        Ledgered::Ran { output, .. } => {
            tracing::info!(file = identity.label(), summary = %output.summary(), "directory file loaded");
            ObjectOutcome::Loaded(Box::new(output))
        }
        Ledgered::AlreadyDone { disposition, .. } => {
            objects.dispose(key, disposition).await?;
            ObjectOutcome::AlreadyDone(disposition)
        }
    })
}

fn disposition(report: &FileReport) -> Disposition {
    match report.status {
        FileStatus::Applied => Disposition::Processed,
        FileStatus::Rejected => Disposition::Rejected,
    }
}

/// The ledger's totals: the resource counts (a directory file has no transaction sets).
fn totals(counts: &Counts) -> Totals {
    Totals {
        resources: WriteCounts {
            created: counts.created,
            updated: counts.updated,
            unchanged: counts.unchanged,
        },
        ..Totals::default()
    }
}

/// Writes `reports/<key>.json` (where the object store puts outputs) and marks the
/// source.
async fn write_report<O: ObjectStore>(
    objects: &O,
    key: &str,
    report: &FileReport,
) -> Result<(), ObjectError> {
    let disposition = disposition(report);
    objects
        .put(
            &objects.output_key(key, disposition, "json"),
            report.to_json().into_bytes(),
            "application/json",
        )
        .await?;
    objects.dispose(key, disposition).await
}

fn too_large(key: &str, size: u64, config: &ObjectLoadConfig) -> FileReport {
    tracing::warn!(
        file = key,
        size,
        max = config.max_file_bytes,
        "directory file over the size limit: refused"
    );
    FileReport {
        file: key.to_owned(),
        format: "unknown".to_owned(),
        mode: mode_of(key),
        status: FileStatus::Rejected,
        counts: Counts::default(),
        problems: vec![LineProblem::new(
            0,
            "file",
            format!(
                "the file is {size} bytes; files over {} bytes are not accepted. Split it into change sets.",
                config.max_file_bytes
            ),
        )],
        stale: Stale {
            threshold_days: config.load.stale_after_days,
            ..Stale::default()
        },
        loaded_at: fhir::Instant::now().to_string(),
    }
}
