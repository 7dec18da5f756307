//! Who is attributed to which provider organisation, for the Provider Access API.
//!
//! A provider organisation has one attribution list, shown as a Da Vinci ATR-style
//! `Group` ([`group`]): `identifier` = its NPI and/or TIN, `member[].entity` =
//! `Patient/{id}` with the attribution `period`. The plan loads the lists from its own
//! systems as CSV or NDJSON `Group` files ([`load`]); a load replaces each provider's
//! list as a whole.
//!
//! Storage is the key-value port, never a resource listing: a provider's list can hold
//! hundreds of thousands of members, so it is kept as a header (`attr-group`) and
//! numbered chunks of [`group::CHUNK_SIZE`] members in the Group's own namespace. A
//! bulk export's work item is one chunk, read with one Get; no Scan, no listing.
//! A load writes the new version's chunks first and then swaps the header with a
//! version check, so readers see the old list or the new one, never a mix.

pub mod group;
pub mod load;
pub mod object;

pub use group::{GroupHeader, Member, ProviderId};
pub use load::{LoadReport, load_file};
pub use object::{ObjectOutcome, load_object};

/// Why an attribution operation failed (bad files get a [`LoadReport`], not this).
#[derive(Debug, thiserror::Error)]
pub enum AttributionError {
    #[error("store: {0}")]
    Store(#[from] fhir_store::StoreError),
    #[error("opt-out: {0}")]
    OptOut(#[from] member_consent::GrantError),
    #[error("a stored attribution record is corrupt: {0}")]
    Corrupt(String),
    #[error("another load changed group {0} at the same time; load the file again")]
    Conflict(String),
}
