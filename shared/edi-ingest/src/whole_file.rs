//! Files that are read whole and applied all or nothing (a provider directory file, a
//! provider attribution list), loaded from an object store under the same ledger as
//! X12 files: [`run_ledgered`] claims the file (a duplicate event or a re-sent file
//! changes nothing), the loader applies it, the JSON report goes where the store puts
//! reports (`reports/<key>.json` on S3), the source is marked processed or rejected,
//! and the ledger records it last. Errors carry this crate's retry classification,
//! so every such function's dead-letter handling is the X12 one.

use std::future::Future;

use fhir_store::KeyValueStore;

use crate::{Disposition, IngestError, Ledgered, ObjectError, ObjectStore, Totals, run_ledgered};

/// What a whole-file loader reports about one file.
pub trait WholeFileReport {
    /// Processed (applied) or rejected (nothing written).
    fn disposition(&self) -> Disposition;
    /// The ledger's totals.
    fn totals(&self) -> Totals;
    /// The report as the JSON written next to the file.
    fn to_json(&self) -> String;
}

/// The bounds of loading one file.
#[derive(Debug, Clone, Copy)]
pub struct WholeFileLimits {
    /// Larger objects are refused with a report, before they are read: the file is
    /// parsed whole, so this bounds the function's memory.
    pub max_file_bytes: usize,
    /// An in-progress ledger claim older than this is taken over (above the timeout).
    pub stale_after_secs: i64,
}

/// What came of one object.
#[derive(Debug)]
pub enum WholeFileOutcome<R> {
    /// This run loaded (or refused) the file.
    Loaded(Box<R>),
    /// The ledger says it was loaded before: nothing was done.
    AlreadyDone(Disposition),
}

impl<R: WholeFileReport> WholeFileOutcome<R> {
    /// The record's result, as the S3-triggered functions report it: `processed`,
    /// `rejected` or `already-processed`.
    pub fn result(&self) -> &'static str {
        match self {
            WholeFileOutcome::AlreadyDone(_) => "already-processed",
            WholeFileOutcome::Loaded(report) => report.disposition().as_str(),
        }
    }
}

/// Loads the object `key` of `objects` under `kv`'s ledger: `too_large` makes the
/// refusal of an object over the limit, `load` applies the bytes and makes the
/// report.
pub async fn load_whole_object<K, O, R, F, Fut>(
    kv: &K,
    objects: &O,
    key: &str,
    limits: WholeFileLimits,
    too_large: impl FnOnce(u64) -> R,
    load: F,
) -> Result<WholeFileOutcome<R>, IngestError>
where
    K: KeyValueStore + ?Sized,
    O: ObjectStore,
    R: WholeFileReport,
    F: FnOnce(Vec<u8>) -> Fut,
    Fut: Future<Output = Result<R, IngestError>>,
{
    let object = match objects.get(key, limits.max_file_bytes).await {
        Ok(object) => object,
        Err(ObjectError::TooLarge { size, .. }) => {
            tracing::warn!(
                file = key,
                size,
                max = limits.max_file_bytes,
                "file over the size limit: refused"
            );
            // Not claimed: writing the same refusal twice is harmless.
            let report = too_large(size);
            write_report(objects, key, &report).await?;
            return Ok(WholeFileOutcome::Loaded(Box::new(report)));
        }
        Err(e) => return Err(e.into()),
    };
    let identity = object.identity.clone();
    let ledgered = run_ledgered(
        kv,
        &identity,
        limits.stale_after_secs,
        |_resumed| async move {
            let bytes = object.to_bytes().map_err(|e| {
                IngestError::Objects(ObjectError::Backend(format!(
                    "reading the local copy of {}: {e}",
                    object.identity.label()
                )))
            })?;
            let report = load(bytes).await?;
            write_report(objects, key, &report).await?;
            Ok(report)
        },
        |report| (report.disposition(), report.totals()),
    )
    .await?;
    Ok(match ledgered {
        Ledgered::Ran { output, .. } => {
            tracing::info!(
                file = identity.label(),
                disposition = output.disposition().as_str(),
                "whole file loaded"
            );
            WholeFileOutcome::Loaded(Box::new(output))
        }
        Ledgered::AlreadyDone { disposition, .. } => {
            objects.dispose(key, disposition).await?;
            WholeFileOutcome::AlreadyDone(disposition)
        }
    })
}

/// Writes `reports/<key>.json` (where the object store puts outputs) and marks the
/// source.
async fn write_report<O: ObjectStore, R: WholeFileReport>(
    objects: &O,
    key: &str,
    report: &R,
) -> Result<(), ObjectError> {
    let disposition = report.disposition();
    objects
        .put(
            &objects.output_key(key, disposition, "json"),
            report.to_json().into_bytes(),
            "application/json",
        )
        .await?;
    objects.dispose(key, disposition).await
}
