//! An attribution file in an object store (the EDI bucket's `attribution/` prefix on
//! AWS), loaded by `edi_ingest::whole_file` under the same ledger, report and retry
//! rules as X12 and provider directory files, with [`load_file`] applying it all or
//! nothing.

use edi_ingest::whole_file::{
    WholeFileLimits, WholeFileOutcome, WholeFileReport, load_whole_object,
};
use edi_ingest::{Disposition, IngestError, ObjectStore, Totals, WriteCounts};
use fhir_store::{KeyValueStore, ResourceStore};

use crate::AttributionError;
use crate::load::{LoadReport, Problem, load_file, rejected_report};

/// What came of one object.
pub type ObjectOutcome = WholeFileOutcome<LoadReport>;

/// Loads the object `key` of `objects` into `store`, under `store`'s ledger.
pub async fn load_object<S, O>(
    store: &S,
    objects: &O,
    key: &str,
    limits: WholeFileLimits,
) -> Result<ObjectOutcome, IngestError>
where
    S: ResourceStore + KeyValueStore,
    O: ObjectStore,
{
    load_whole_object(
        store,
        objects,
        key,
        limits,
        |size| {
            rejected_report(
                key,
                Problem {
                    line: 0,
                    message: format!(
                        "the file is {size} bytes; files over {} bytes are not accepted. Split it by provider.",
                        limits.max_file_bytes
                    ),
                },
            )
        },
        |bytes| async move {
            load_file(store, name_of(key), &bytes)
                .await
                .map_err(|e| ingest_error(key, e))
        },
    )
    .await
}

/// The file name the format is read from (`attribution/2027/q1.csv` → `q1.csv`).
fn name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Retry classification: store throttling and a concurrent load of the same Group are
/// worth a retry; corrupt stored data is not.
fn ingest_error(key: &str, e: AttributionError) -> IngestError {
    let file = key.to_owned();
    match e {
        AttributionError::Store(source) => IngestError::Store { file, source },
        AttributionError::OptOut(member_consent::GrantError::Store(source)) => {
            IngestError::Store { file, source }
        }
        AttributionError::Conflict(_) => IngestError::Busy { file },
        other => IngestError::Conversion {
            file,
            reason: other.to_string(),
        },
    }
}

impl WholeFileReport for LoadReport {
    fn disposition(&self) -> Disposition {
        if self.status == "accepted" {
            Disposition::Processed
        } else {
            Disposition::Rejected
        }
    }

    /// Groups written count as updated resources, Groups already current as
    /// unchanged (a Group is the one resource a list is shown as).
    fn totals(&self) -> Totals {
        let unchanged = self.groups.iter().filter(|g| g.unchanged).count();
        Totals {
            resources: WriteCounts {
                created: 0,
                updated: self.groups.len() - unchanged,
                unchanged,
            },
            ..Totals::default()
        }
    }

    fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_read_from_the_last_path_segment() {
        assert_eq!(name_of("attribution/2027/q1.csv"), "q1.csv");
        assert_eq!(name_of("q1.ndjson"), "q1.ndjson");
    }
}
