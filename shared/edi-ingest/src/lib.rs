//! The X12 ingest pipeline around the pure `edi-fhir` mapping, free of AWS types.
//!
//! An [`Ingestor`] takes a file (from an [`ObjectStore`] or as bytes) and:
//!
//! 1. **claims it in the ledger** ([`ledger`], a [`fhir_store::KeyValueStore`]
//!    namespace): a file already done is skipped, so duplicate S3 events and
//!    re-sent files change nothing; a crashed run's stale claim is taken over and
//!    the file re-run from the start;
//! 2. **converts it completely** (`edi_fhir::convert`) before applying anything,
//!    because the interchange verdict (IEA) comes at the end of the file and an
//!    interchange problem rejects everything. That holds the whole file's changes in
//!    memory, which is why files are capped at [`IngestConfig::max_file_bytes`];
//! 3. **applies per transaction set, as 999 defines acceptance**: every change of an
//!    accepted set goes through `update_with` + `edi_fhir::apply` + the search index
//!    ([`apply`]); a rejected set applies nothing;
//! 4. **reports**: a JSON [`Report`] and a 999 ([`ack::generate_999`]) from the same
//!    results, written next to the file, which is then tagged or moved;
//! 5. **records the file as done**, last, so that a crash at any earlier step is
//!    re-run.
//!
//! Crash safety rests on `edi_fhir::apply` being idempotent: re-applying a change the
//! store already reflects writes nothing, so a re-run ends in the same state as a
//! clean run.
//!
//! Logging names files (S3 keys, paths) and counts only, never names, member ids or
//! claim content.

#![forbid(unsafe_code)]

pub mod ack;
pub mod apply;
mod identity;
mod ingestor;
pub mod ledger;
mod objects;
pub mod report;
#[cfg(feature = "scenarios")]
pub mod scenarios;

pub use identity::FileIdentity;
pub use ingestor::{IngestConfig, IngestError, IngestOutcome, Ingested, Ingestor};
pub use ledger::Disposition;
pub use objects::{FolderObjects, ObjectError, ObjectStore, StoredObject};
pub use report::{FileStatus, Report, SetReport, Totals, WriteCounts};
