//! The pipeline: claim the file in the ledger, judge it (pass 1), apply what is
//! accepted (pass 2), write the report and 999, mark the source, record the file as
//! done. The passes stream the file ([`crate::passes`]): memory stays bounded
//! whatever its size.

use std::sync::Arc;

use edi_fhir::{FileConversion, MappingConfig, Problem, ProblemLevel, SetOutcome};
use fhir_store::{KeyValueStore, ResourceStore, StoreError};
use serde::Serialize;

use crate::ack::{AckEnvelope, generate_999};
use crate::identity::FileIdentity;
use crate::ledger::{self, Claim, LedgerEntry};
use crate::objects::{ObjectError, ObjectStore, StoredObject};
use crate::passes::{self, ApplySettings, PassError};
use crate::report::Disposition;
use crate::report::{Report, Totals};

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub mapping: MappingConfig,
    /// Larger files are refused with a report (problem code 024), before they are
    /// read. Memory does not depend on it (files are streamed, one transaction set
    /// at a time); what it protects is the run's time budget and the disk that
    /// holds the local copy (the Lambda's ephemeral storage must exceed it).
    pub max_file_bytes: usize,
    /// An in-progress ledger claim older than this belongs to a run that crashed and
    /// is taken over. Must exceed the longest possible run (the Lambda timeout).
    pub stale_after_secs: i64,
    /// Resources written concurrently.
    pub write_concurrency: usize,
    /// Changes applied per batch (a set's changes arrive as they are mapped and are
    /// written a batch at a time); also how many changes may wait between the
    /// conversion and the writer. Memory holds about two batches. At most 65 536.
    pub batch_changes: usize,
    /// ISA15 of our 999s.
    pub production: bool,
}

impl IngestConfig {
    /// 1 GiB, 16 minutes (the Lambda maximum of 15 plus a margin), 16 writers,
    /// batches of 512 changes.
    pub fn new(mapping: MappingConfig) -> Self {
        IngestConfig {
            mapping,
            max_file_bytes: 1024 * 1024 * 1024,
            stale_after_secs: 16 * 60,
            write_concurrency: 16,
            batch_changes: 512,
            production: true,
        }
    }
}

/// What came of one file.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// This run processed the file.
    Ingested(Box<Ingested>),
    /// The ledger says the file was processed before: nothing was done.
    AlreadyDone {
        disposition: Disposition,
        totals: Totals,
    },
}

/// The outputs of a processed file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ingested {
    pub report: Report,
    /// The 999, or `None` when the file had no transaction set to acknowledge.
    pub ack: Option<String>,
    /// True when this run took over the claim of a run that crashed.
    pub resumed: bool,
}

impl IngestOutcome {
    pub fn disposition(&self) -> Disposition {
        match self {
            IngestOutcome::Ingested(done) => done.report.disposition(),
            IngestOutcome::AlreadyDone { disposition, .. } => *disposition,
        }
    }

    pub fn totals(&self) -> Totals {
        match self {
            IngestOutcome::Ingested(done) => done.report.totals,
            IngestOutcome::AlreadyDone { totals, .. } => *totals,
        }
    }
}

/// Why a file could not be ingested now. Everything here leaves the store as a
/// re-run expects it; [`IngestError::is_retryable`] says whether a re-run may help.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file} is being processed by another run; retry later")]
    Busy { file: String },
    /// The message names the kind of failure only: a store error's own text can
    /// carry a resource id, and resource ids carry member ids (PHI), while this
    /// message is what the Lambda logs and returns. The source keeps the detail.
    #[error(
        "the store failed while ingesting {file}: {}",
        store_error_kind(source)
    )]
    Store {
        file: String,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("the conversion of {file} did not finish: {reason}")]
    Conversion { file: String, reason: String },
    /// The two passes over a file did not read the same bytes (a local file
    /// rewritten while it was being ingested). Nothing is recorded as done; a
    /// retry reads the file as it is now.
    #[error("{file} changed while it was being ingested ({reason}); retry")]
    Changed { file: String, reason: &'static str },
}

impl IngestError {
    /// True for transient failures (a busy claim, throttling, the network), false for
    /// what a retry cannot fix (a missing object, corrupt stored data).
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Busy { .. } => true,
            IngestError::Store { source, .. } => {
                matches!(source, StoreError::Backend(_) | StoreError::Conflict { .. })
            }
            IngestError::Objects(e) => matches!(e, ObjectError::Backend(_)),
            IngestError::Conversion { .. } => false,
            IngestError::Changed { .. } => true,
        }
    }
}

/// The ingest pipeline over one store that is both the resource store and the
/// key-value store of the ledger (one DynamoDB table, or one redb file).
pub struct Ingestor<S> {
    store: Arc<S>,
    config: IngestConfig,
}

impl<S: ResourceStore + KeyValueStore + 'static> Ingestor<S> {
    pub fn new(store: Arc<S>, config: IngestConfig) -> Self {
        Ingestor { store, config }
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Ingests a file held in memory, without writing outputs anywhere: for
    /// `patient-access ingest` and tests. Skips files the ledger says are done.
    /// The same streaming passes as [`Ingestor::ingest_object`], over the bytes.
    pub async fn ingest_bytes(
        &self,
        identity: &FileIdentity,
        bytes: Vec<u8>,
    ) -> Result<IngestOutcome, IngestError> {
        if bytes.len() > self.config.max_file_bytes {
            let refused = self.too_large(identity.label(), bytes.len() as u64);
            return Ok(IngestOutcome::Ingested(Box::new(refused)));
        }
        let object = StoredObject::from_bytes(identity.clone(), bytes);
        let ledgered = run_ledgered(
            self.store.as_ref(),
            identity,
            self.config.stale_after_secs,
            |resumed| self.process(&object, resumed),
            summary,
        )
        .await?;
        Ok(self.outcome(identity, ledgered))
    }

    /// Ingests one object: get a local copy (a folder's file in place, a spooled
    /// copy of an S3 object), process it, write `output_key(…, "json")` and
    /// `output_key(…, "999")`, dispose of the source, record it in the ledger. The
    /// ledger is updated last, so a crash anywhere before leaves a claim that a
    /// re-run takes over and completes.
    pub async fn ingest_object<O: ObjectStore>(
        &self,
        objects: &O,
        key: &str,
    ) -> Result<IngestOutcome, IngestError> {
        let object = match objects.get(key, self.config.max_file_bytes).await {
            Ok(object) => object,
            Err(ObjectError::TooLarge { label, size, .. }) => {
                // Not claimed in the ledger: writing the same report twice is harmless.
                let refused = self.too_large(&label, size);
                write_outputs(objects, key, &refused).await?;
                return Ok(IngestOutcome::Ingested(Box::new(refused)));
            }
            Err(e) => return Err(e.into()),
        };
        let identity = object.identity.clone();
        let ledgered = run_ledgered(
            self.store.as_ref(),
            &identity,
            self.config.stale_after_secs,
            |resumed| async move {
                let done = self.process(&object, resumed).await?;
                write_outputs(objects, key, &done).await?;
                Ok(done)
            },
            summary,
        )
        .await?;
        if let Ledgered::AlreadyDone { disposition, .. } = &ledgered {
            // Mark this copy too (a folder moves it out of the inbox; S3 tags the
            // new object version of a re-upload with the same content).
            objects.dispose(key, *disposition).await?;
        }
        Ok(self.outcome(&identity, ledgered))
    }

    fn outcome(&self, identity: &FileIdentity, ledgered: Ledgered<Ingested>) -> IngestOutcome {
        match ledgered {
            Ledgered::Ran { output, .. } => {
                let totals = &output.report.totals;
                tracing::info!(
                    file = identity.label(),
                    disposition = output.report.disposition().as_str(),
                    sets_accepted = totals.sets_accepted,
                    sets_rejected = totals.sets_rejected,
                    claims = totals.claims,
                    created = totals.resources.created,
                    updated = totals.resources.updated,
                    unchanged = totals.resources.unchanged,
                    // The operations dashboard counts claims and rejected sets here.
                    event = "edi.ingested",
                    "ingested"
                );
                IngestOutcome::Ingested(Box::new(output))
            }
            Ledgered::AlreadyDone {
                disposition,
                totals,
            } => IngestOutcome::AlreadyDone {
                disposition,
                totals,
            },
        }
    }

    /// Pass 1 (the verdicts), then pass 2 (apply every accepted set) unless the
    /// envelope rejects everything or no set is accepted.
    async fn process(&self, object: &StoredObject, resumed: bool) -> Result<Ingested, IngestError> {
        let identity = &object.identity;
        let source = object.open().map_err(|e| read_error(identity, &e))?;
        let mapping = self.config.mapping.clone();
        let expected = object.sha256();
        let (conversion, digest) =
            tokio::task::spawn_blocking(move || passes::verdicts(source, &mapping, expected))
                .await
                .map_err(|e| pass_error(identity, PassError::Panicked(e.to_string())))?
                .map_err(|e| pass_error(identity, e))?;
        let accepted = conversion
            .transaction_sets
            .iter()
            .filter(|s| matches!(s.outcome, SetOutcome::Accepted { .. }))
            .count();
        tracing::info!(
            file = identity.label(),
            bytes = object.size,
            sets = conversion.transaction_sets.len(),
            accepted,
            rejects_everything = conversion.rejects_everything,
            "verdicts"
        );
        let writes = if conversion.rejects_everything || accepted == 0 {
            Vec::new()
        } else {
            let source = object.open().map_err(|e| read_error(identity, &e))?;
            let settings = ApplySettings {
                mapping: self.config.mapping.clone(),
                batch_changes: self.config.batch_changes,
                write_concurrency: self.config.write_concurrency,
            };
            passes::apply(self.store.as_ref(), source, &conversion, digest, settings)
                .await
                .map_err(|e| pass_error(identity, e))?
        };
        let report = Report::new(identity.label(), &conversion, &writes);
        let ack = generate_999(&conversion, &self.ack_envelope(identity, &conversion));
        Ok(Ingested {
            report,
            ack,
            resumed,
        })
    }

    /// Our 999's envelope: ids swapped from the file's, the current UTC time, and a
    /// control number derived from the file's identity, so a re-run produces the
    /// same number.
    fn ack_envelope(&self, identity: &FileIdentity, conversion: &FileConversion) -> AckEnvelope {
        let now = time::OffsetDateTime::now_utc();
        let digits = identity
            .ledger_key()
            .get(..8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .unwrap_or(1);
        AckEnvelope {
            sender_id: conversion.receiver_id.clone().unwrap_or_default(),
            receiver_id: conversion.sender_id.clone().unwrap_or_default(),
            date: format!(
                "{:04}{:02}{:02}",
                now.year(),
                u8::from(now.month()),
                now.day()
            ),
            time: format!("{:02}{:02}", now.hour(), now.minute()),
            control_number: digits % 999_999_999 + 1,
            production: self.config.production,
        }
    }

    fn too_large(&self, label: &str, size: u64) -> Ingested {
        tracing::warn!(
            file = label,
            size,
            max = self.config.max_file_bytes,
            "file over the size limit: refused"
        );
        let problem = Problem {
            segment_position: None,
            file_segment_position: None,
            segment_id: None,
            element: None,
            level: ProblemLevel::Interchange,
            code: "024".to_owned(),
            message: format!(
                "the file is {size} bytes; files over {} bytes are not accepted. Split it into several interchanges.",
                self.config.max_file_bytes
            ),
        };
        Ingested {
            report: Report::refused(label, problem),
            ack: None,
            resumed: false,
        }
    }
}

fn summary(done: &Ingested) -> (Disposition, Totals) {
    (done.report.disposition(), done.report.totals)
}

/// What [`run_ledgered`] came to.
#[derive(Debug)]
pub enum Ledgered<T> {
    /// This run processed the file; `resumed` when it took over a crashed run's claim.
    Ran { output: T, resumed: bool },
    /// The ledger says the file was processed before: nothing was run.
    AlreadyDone {
        disposition: Disposition,
        totals: Totals,
    },
}

/// The ledger protocol around processing one file, whatever the file (X12 claims,
/// provider directory files): claim it (a file done before is not run again, a
/// fresh claim of another run is [`IngestError::Busy`], a stale one is taken over),
/// run `process` (which writes the file's outputs; it is told whether it resumes a
/// crashed run), then record the file as done with what `summary` says of the
/// result. On any error the claim is released, so a retry can start at once. The
/// ledger is written last: a crash anywhere before leaves a claim a re-run takes
/// over, which is safe because every caller's writes are idempotent.
pub async fn run_ledgered<K, T, F, Fut>(
    kv: &K,
    identity: &FileIdentity,
    stale_after_secs: i64,
    process: F,
    summary: impl FnOnce(&T) -> (Disposition, Totals),
) -> Result<Ledgered<T>, IngestError>
where
    K: KeyValueStore + ?Sized,
    F: FnOnce(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T, IngestError>>,
{
    let claim = ledger::claim(kv, identity, fhir_store::kv::unix_now(), stale_after_secs)
        .await
        .map_err(|source| store_error(identity, source))?;
    let (version, resumed) = match claim {
        Claim::Owned { version, resumed } => {
            if resumed {
                tracing::warn!(
                    file = identity.label(),
                    "taking over a stale claim: re-running the file"
                );
            }
            (version, resumed)
        }
        Claim::Done(LedgerEntry::Done {
            disposition,
            totals,
            ..
        }) => {
            tracing::info!(file = identity.label(), "already processed: nothing to do");
            return Ok(Ledgered::AlreadyDone {
                disposition,
                totals,
            });
        }
        Claim::Done(LedgerEntry::InProgress { .. }) | Claim::Busy => {
            return Err(IngestError::Busy {
                file: identity.label().to_owned(),
            });
        }
    };
    let finished = match process(resumed).await {
        Ok(output) => {
            let (disposition, totals) = summary(&output);
            let entry = LedgerEntry::Done {
                file: identity.label().to_owned(),
                finished_at: fhir_store::kv::unix_now(),
                disposition,
                totals,
            };
            match ledger::finish(kv, identity, version, &entry).await {
                Ok(owned) => {
                    if !owned {
                        tracing::warn!(
                            file = identity.label(),
                            "the claim was taken over meanwhile; the other run records the result"
                        );
                    }
                    Ok(output)
                }
                Err(source) => Err(store_error(identity, source)),
            }
        }
        Err(e) => Err(e),
    };
    match finished {
        Ok(output) => Ok(Ledgered::Ran { output, resumed }),
        Err(e) => {
            if let Err(release) = ledger::release(kv, identity, version).await {
                tracing::warn!(file = identity.label(), error = %release, "could not release the ledger claim; it will go stale");
            }
            Err(e)
        }
    }
}

/// A store error's kind, without its text (which may name resource ids).
fn store_error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Conflict { .. } => "write conflicts persisted after retries",
        StoreError::Corrupt(_) => "stored data is corrupt",
        StoreError::Backend(_) => "the backend failed (network, throttling after retries)",
        StoreError::InvalidKey(_) => "invalid key-value key",
        StoreError::InvalidValue(_) => "invalid key-value value",
    }
}

fn store_error(identity: &FileIdentity, source: StoreError) -> IngestError {
    IngestError::Store {
        file: identity.label().to_owned(),
        source,
    }
}

/// Reading the local copy failed: retryable, a retry makes a new one.
fn read_error(identity: &FileIdentity, e: &std::io::Error) -> IngestError {
    IngestError::Objects(ObjectError::Backend(format!(
        "reading the local copy of {}: {e}",
        identity.label()
    )))
}

fn pass_error(identity: &FileIdentity, e: PassError) -> IngestError {
    let file = identity.label().to_owned();
    match e {
        PassError::Read(e) => read_error(identity, &e),
        PassError::Changed(reason) => IngestError::Changed { file, reason },
        PassError::Panicked(reason) => IngestError::Conversion { file, reason },
        PassError::Store(source) => IngestError::Store { file, source },
    }
}

/// Writes the report and 999 where the object store puts outputs, then disposes of
/// the source. Idempotent: overwriting the same outputs, tagging again, are no-ops
/// in effect.
async fn write_outputs<O: ObjectStore>(
    objects: &O,
    key: &str,
    done: &Ingested,
) -> Result<(), ObjectError> {
    let disposition = done.report.disposition();
    let report_key = objects.output_key(key, disposition, "json");
    objects
        .put(
            &report_key,
            done.report.to_json().into_bytes(),
            "application/json",
        )
        .await?;
    if let Some(ack) = &done.ack {
        let ack_key = objects.output_key(key, disposition, "999");
        objects
            .put(&ack_key, ack.clone().into_bytes(), "application/edi-x12")
            .await?;
    }
    objects.dispose(key, disposition).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_do_not_repeat_resource_ids_which_carry_member_ids() {
        let e = IngestError::Store {
            file: "s3://b/inbound/x.x12".into(),
            source: StoreError::Conflict {
                resource_type: fhir::ResourceType::Patient,
                id: "patient-999996666-DH000112345".into(),
            },
        };
        let shown = e.to_string();
        assert!(!shown.contains("DH000112345"), "{shown}");
        assert!(
            shown.contains("s3://b/inbound/x.x12") && e.is_retryable(),
            "{shown}"
        );
    }
}
