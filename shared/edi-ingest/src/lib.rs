//! The X12 ingest pipeline around the pure `edi-fhir` mapping, free of AWS types.
//!
//! An [`Ingestor`] takes a file (from an [`ObjectStore`] or as bytes) and:
//!
//! 1. **claims it in the ledger** ([`ledger`], a [`fhir_store::KeyValueStore`]
//!    namespace): a file already done is skipped, so duplicate S3 events and
//!    re-sent files change nothing; a crashed run's stale claim is taken over and
//!    the file re-run from the start;
//! 2. **judges it completely** before applying anything (pass 1: every transaction
//!    set's verdict and the envelope's, `edi_fhir::stream_changes` keeping no
//!    change), because the interchange verdict (IEA) comes at the end of the file
//!    and an interchange problem rejects everything;
//! 3. **applies per transaction set, as 999 defines acceptance** (pass 2, only when
//!    something is accepted): the file is converted again and every change of an
//!    accepted set goes, as it is mapped, in batches, through `update_with` +
//!    `edi_fhir::apply` + the search index ([`apply`]); a rejected set applies
//!    nothing;
//! 4. **reports**: a JSON [`Report`] and a 999 ([`ack::generate_999`]) from pass 1's
//!    verdicts and pass 2's write counts, written next to the file, which is then
//!    tagged or moved;
//! 5. **records the file as done**, last, so that a crash at any earlier step is
//!    re-run.
//!
//! Both passes stream the file as a `std::io::Read`:
//! memory is one transaction set's bytes plus a bounded number of changes, whatever
//! the file's size. An [`ObjectStore`] hands out a local copy to read twice: a
//! folder's file in place, an S3 object spooled to a temporary file ([`Spool`]).
//! [`IngestConfig::max_file_bytes`] caps the size for the time budget and the disk,
//! not for memory.
//!
//! Steps 1 and 5 are [`run_ledgered`] on its own, which [`whole_file`] reuses for
//! files read whole and applied all or nothing: the provider directory
//! (`directory/` of the same bucket) and provider attribution lists (`attribution/`).
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
mod passes;
pub mod report;
#[cfg(feature = "scenarios")]
pub mod scenarios;
pub mod whole_file;

pub use identity::FileIdentity;
pub use ingestor::{
    IngestConfig, IngestError, IngestOutcome, Ingested, Ingestor, Ledgered, run_ledgered,
};
pub use objects::{FolderObjects, ObjectError, ObjectStore, Spool, StoredObject};
pub use report::{Disposition, FileStatus, Report, SetReport, Totals, WriteCounts};
