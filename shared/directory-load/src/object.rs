//! A directory file in an object store (the EDI bucket's `directory/` prefix on AWS),
//! loaded by `edi_ingest::whole_file` under the same ledger as X12 files, with
//! [`load_file`] applying it all or nothing.

use edi_ingest::whole_file::{
    WholeFileLimits, WholeFileOutcome, WholeFileReport, load_whole_object,
};
use edi_ingest::{Disposition, IngestError, ObjectStore, Totals, WriteCounts};
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
pub type ObjectOutcome = WholeFileOutcome<FileReport>;

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
    let limits = WholeFileLimits {
        max_file_bytes: config.max_file_bytes,
        stale_after_secs: config.stale_after_secs,
    };
    load_whole_object(
        store,
        objects,
        key,
        limits,
        |size| too_large(key, size, config),
        |bytes| async move {
            let report = load_file(store, key, &bytes, mode_of(key), &config.load)
                .await
                .map_err(|source| IngestError::Store {
                    file: key.to_owned(),
                    source,
                })?;
            tracing::info!(file = key, summary = %report.summary(), "directory file loaded");
            Ok(report)
        },
    )
    .await
}

impl WholeFileReport for FileReport {
    fn disposition(&self) -> Disposition {
        match self.status {
            FileStatus::Applied => Disposition::Processed,
            FileStatus::Rejected => Disposition::Rejected,
        }
    }

    /// The resource counts (a directory file has no transaction sets).
    fn totals(&self) -> Totals {
        Totals {
            resources: WriteCounts {
                created: self.counts.created,
                updated: self.counts.updated,
                unchanged: self.counts.unchanged,
            },
            ..Totals::default()
        }
    }

    fn to_json(&self) -> String {
        FileReport::to_json(self)
    }
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
