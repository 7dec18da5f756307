//! FHIR Bulk Data Access 2.0 `$export` for the Provider Access API, and the
//! Payer-to-Payer exchange's bulk side, which reuses jobs, slices, the worker and the
//! manifest: `$davinci-data-export` of a match Group ([`members`]) under the sharing
//! rule of [`p2p`] and the plan's [`sensitive`] list, and `$bulk-member-match`, whose
//! chunks the same workers hand to a [`worker::JobRunner`].
//!
//! The flow, the same locally and on AWS:
//!
//! 1. **Kick-off** ([`api`]): `GET`/`POST /Group/{id}/$export` checks the backend token,
//!    that the Group is the caller's, and the parameters ([`request`]); it records a
//!    [`job::Job`] pinned to the Group's current version and enqueues one
//!    [`job::WorkItem`] per chunk of members (a *slice*) on the [`WorkQueue`] port;
//!    `202` with `Content-Location` = the status URL.
//! 2. **Workers** ([`worker::run_slice`]): for each member of the slice whose
//!    attribution covers today and who has not opted out *now*, read Patient,
//!    Coverage and ExplanationOfBenefit from their compartment, make each EOB
//!    non-financial ([`basis`]), and write one NDJSON part per type and slice through
//!    the [`ExportFiles`] port. A part's name is fixed by job, type and slice, so a
//!    retried slice overwrites its own parts: each resource ends up exactly once.
//! 3. **Finish**: each slice records its counts (insert-if-absent), bumps the job's
//!    counter, and whoever sees the counter reach the slice count checks that every
//!    slice record exists and writes the manifest into the job with a version check.
//! 4. **Status** answers `202` + `X-Progress` + `Retry-After` while running, `200` with
//!    the manifest when done; `DELETE` cancels and deletes the files; downloads need a
//!    token of the client that asked.

pub mod api;
pub mod basis;
pub mod files;
pub mod job;
pub mod local;
pub mod members;
pub mod p2p;
pub mod request;
pub mod sensitive;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worker;

pub use files::{Download, ExportFiles, FilesError, LocalFiles};
pub use job::{Job, JobStatus, WorkItem, WorkQueue};

/// Why a job step failed (bad requests are OperationOutcomes, not this).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("store: {0}")]
    Store(#[from] fhir_store::StoreError),
    #[error("attribution: {0}")]
    Attribution(#[from] attribution::AttributionError),
    #[error("opt-out: {0}")]
    OptOut(#[from] member_consent::GrantError),
    #[error("files: {0}")]
    Files(#[from] FilesError),
    #[error("queue: {0}")]
    Queue(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}
