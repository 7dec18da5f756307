//! X12 005010 → CARIN Blue Button 2.x (FHIR R4): the pure mapping, and the
//! pure merge rule ([`apply`]) the ingest pipeline uses to fold the mapped
//! [`Change`]s into the store. No I/O, no AWS.
//!
//! # What goes in, what comes out
//!
//! The conversion driver (module `driver`) reads a file with the
//! `x12` crate and maps every transaction set: [`convert`] holds a whole file
//! in memory (zero-copy); [`stream_changes`] hands out each accepted set's
//! changes after its verdict in bounded memory (a set is mapped once while
//! its JSON fits in [`STREAMING_BUFFER_BYTES`], twice beyond); [`verdicts`]
//! gives every set's verdict without serialising anything. A [`Change`]'s
//! resource is JSON text, written once
//! from typed structs that borrow the X12 input ([`Resource`]):
//!
//! | set | profile(s) | changes |
//! |---|---|---|
//! | 837P `005010X222A1/A2` | Professional-NonClinician | Patient, Coverage, Organization (payer, billing, facility), Practitioner, EOB |
//! | 837I `005010X223A2/A3` | Inpatient or Outpatient Institutional, from the type of bill ([`ClaimKind::institutional`]) | same |
//! | 837D `005010X224A2/A3` | Oral | same |
//! | 835 `005010X221A1` | completes the EOB of each CLP | Organization (payer, payee), Practitioner, EOB (or `Cancel` for a reversal) |
//! | 834 `005010X220A1` | C4BB-Patient, C4BB-Coverage | Patient, Coverage, Organization |
//! | 278 `005010X217` (request or response) | PDex Prior Authorization (`use = preauthorization`; module `preauth`) | Patient, Coverage, Organization (payer, requester, facility), Practitioner, EOB per patient event (and a `Cancel` of the request's pended record when a response answers it) |
//!
//! Acceptance is per transaction set, as the 999 defines it: a set the reader
//! rejects, or in which the mapper finds an error (for example a CLM05
//! composite written with the wrong separator, which would otherwise read as
//! "no frequency"), is [`SetOutcome::Rejected`] with every [`Problem`] and
//! contributes nothing. Any interchange or group error sets
//! [`FileConversion::rejects_everything`]: then nothing from the file applies.
//!
//! # EOB identity (the key design decision)
//!
//! An 837 is a submission: it does not know the payer's claim control number
//! (ICN, 835 CLP07) unless it is a post-adjudicated 837 or a replacement. An
//! 835 knows the ICN *and* the provider's patient control number (CLP01 =
//! CLM01). The only key both always share is therefore
//!
//! ```text
//! EOB.id = "eob-" + hex(sha256(plan payer id ␟ billing provider key ␟ patient control number))[..32]
//! billing provider key = "npi:" + NPI  (837 2010AA NM109 with NM108=XX; 835 N1*PE N104 with N103=XX)
//!                      | "tin:" + TIN  (837 2010AA REF*EI;            835 N1*PE FI or REF*TJ)
//! ```
//!
//! CLM01 alone is not unique across providers, hence the provider part; the
//! plan's payer id scopes it to one plan. So an 837 and its 835 land on the
//! same id whichever arrives first, and re-ingesting gives the same ids.
//!
//! The EOB's `identifier[uniqueclaimid]` (type `uc`) is the payer's ICN:
//! 835 CLP07, or in a post-adjudicated 837 the plan's own 2330B REF*F8. Until
//! one is known it carries the claim key itself in the system
//! [`fhir::systems::PLAN_CLAIM_KEY`], never CLM01, which goes to
//! `supportingInfo[patientaccountnumber]`.
//!
//! # Replacement, void, reversal, and the order of arrival
//!
//! - **835 before 837.** The 835's `Merge` creates the EOB with what the 835
//!   knows (its lines, amounts, patient, a type guessed from SVC qualifiers
//!   and CLP08); the 837's `Merge` later completes it. [`apply`] is
//!   order-independent for that pair: the 837 owns the claim content, the 835
//!   owns the adjudication (see [`merge`]).
//! - **Replacement (CLM05-3 = 7)** lands on the claim key of its CLM01. When
//!   the provider kept CLM01 (the normal case) that is the *same* EOB, so the
//!   replacement is a new version of it: members see the current truth and
//!   history stays in versions. It records `related` = {prior, REF*F8}, and if
//!   the stored adjudication belongs to that prior ICN it is dropped until the
//!   replacement is adjudicated. When a provider changed CLM01 (X12 RFI 2150),
//!   the payer's 835 reversal carries the *old* CLP01 and cancels the old
//!   EOB, while the correction completes the new one.
//! - **Void (CLM05-3 = 8)** emits the claim's `Merge` (so a void that arrives
//!   first still leaves an EOB, and EOB count = CLM count) followed by
//!   [`Action::Cancel`]. A later claim `Merge` never reactivates a cancelled
//!   EOB, so a late original lands already cancelled.
//! - **835 reversal (CLP02 = 22)** becomes [`Action::Cancel`]: the EOB goes
//!   to `status = cancelled` in a new version. We do not store the negated
//!   amounts: CARIN expresses a reversal by status, and negative amounts must
//!   never be added into an active EOB. A correction (a later CLP for the same
//!   claim with a new ICN, in the same or a later 835) reactivates the EOB
//!   with the corrected adjudication and `related` = {prior, reversed ICN}.
//!   A re-sent copy of the *reversed* payment (same ICN) does not, and a
//!   reversal whose ICN is no longer the one the EOB shows (a correction
//!   already superseded it, e.g. the same 835 ingested twice) is a no-op.
//!   A reversal that arrives before anything is known cancels nothing.
//!
//! # Other resources
//!
//! Ids come from [`ids`]: `org-payer-<payer id>`, `org-npi-<npi>` (else
//! `org-tin-…`), `practitioner-npi-<npi>`, `patient-<payer>-<member id>` for
//! subscribers (hashed for dependents: subscriber id + first name),
//! `coverage-<member>-<line>` with line = medical | dental | vision |
//! pharmacy. Their merges are shallow (fields in the change replace the
//! stored ones, identifiers are unioned), so the last file wins per field.

//! # Speed
//!
//! `cargo bench -p edi-fhir --bench convert` generates 10 MB and 100 MB
//! (`EDI_BENCH_MB`) files of each kind with `x12::generate` (5,000 claims or
//! members per ST..SE, ten sets per GS), writes them to disk and measures,
//! over the same bytes: a plain memchr segment/element split; the `x12`
//! parse alone (stream, envelope, loop tree); parse + mapping without any
//! JSON ([`verdicts`]); and the end-to-end [`stream_changes`]
//! from the file (parse + loops + mapping + the JSON of every change, each
//! copied out as a writer would), in a fresh process for its peak RSS.
//! 100 MB files, 2-core machine shared with other builds, best of 2
//! (on-CPU rate in brackets):
//!
//! | kind | split | x12 parse | parse + map | convert | claims/s | convert / split | JSON out | peak RSS 10 MB / 100 MB |
//! |---|---|---|---|---|---|---|---|---|
//! | 837P | 1,180 MB/s | 139 MB/s | 59 MB/s | 32 (37) MB/s | 63,000 | 37× | 1.4 GB | 59 / 59 MB |
//! | 837I | 1,400 MB/s | 172 MB/s | 59 MB/s | 34 (38) MB/s | 66,000 | 41× | 1.4 GB | 60 / 60 MB |
//! | 835 | 1,470 MB/s | 240 MB/s | 50 MB/s | 27 (30) MB/s | 97,000 | 55× | 2.4 GB | 45 / 46 MB |
//! | 834 | 1,510 MB/s | 152 MB/s | 67 MB/s | 36 (41) MB/s | 163,000 | 42× | 1.2 GB | 27 / 27 MB |
//!
//! Before, the same bench on the `Value`-tree mapper (which also mapped
//! every set twice): 6.4 (6.8), 6.6 (6.9), 4.5 (4.7) and 7.1 (7.5) MB/s;
//! 12,700, 12,800, 16,300 and 32,100 claims/s; 214–338× the split; peak
//! RSS 12–25 MB. Memory is now one set's bytes plus up to
//! [`STREAMING_BUFFER_BYTES`] of its JSON (about 35 MB for 5,000
//! professional claims), the same for a 10 MB and a 100 MB file.
//!
//! Where the time goes (837P, per MB of X12 at the on-CPU rate, 27 ms in
//! all): the `x12` parse about 6 ms; mapping (element reads, ids, building
//! the typed structs) about 11 ms; the output about 10 ms (14 MB of JSON
//! written, handed out and copied: some 1.4 GB/s). Per-set buffers of the
//! reader and the mapper are allocated and released set after set: with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=536870912`
//! the same conversion took about 10 % less CPU in a quick comparison.
//!
//! 100 MB/s is out of reach on one core for this output. It is 14 times the
//! input (24 times for the 835), so 100 MB/s of X12 is 1.4 GB/s of JSON in
//! a budget of 10 ms per MB of X12, of which the `x12` parse alone takes 6
//! (the split takes under 1): the remaining 4 ms would have to map some
//! 2,000 claims and produce 14 MB of JSON, that is 3.5 GB/s of output with
//! mapping for free, where producing it costs 10 ms today. Getting closer
//! needs a faster `x12` parse (its loop recognition and per-segment
//! bookkeeping, not the byte scan), mapping that reads each segment's
//! elements in one pass instead of scanning for each element, output built
//! from pre-rendered constant fragments (most of it is constant URLs, codes
//! and keys) and handed out without a copy, and more than one core (sets
//! are independent, so they can be mapped in parallel).

#![forbid(unsafe_code)]

pub mod ids;
pub mod json;
pub mod kind;
pub mod merge;
mod model;

mod adjudication;
mod changes;
mod claim;
mod driver;
mod enroll;
mod parties;
mod preauth;
mod read;
mod remit;
mod write;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use x12::X12Error;

pub use driver::{
    Event, STREAMING_BUFFER_BYTES, SetReader, convert, fold, map_set_streaming, stream_changes,
    verdicts,
};
pub use kind::ClaimKind;
pub use merge::{apply, first_version_json};

/// Plan settings the mapping needs and X12 does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingConfig {
    /// The plan's own payer id: adjudication inside 837s counts only when
    /// 2330B NM109 (or SVD01) equals it.
    pub payer_id: String,
    /// The plan's name (the payer Organization and `EOB.insurer.display`).
    pub payer_name: String,
    /// X12 doesn't carry in/out-of-network for professional and oral lines.
    pub default_network_status: NetworkStatus,
}

/// CARIN `benefitpaymentstatus` / network status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkStatus {
    InNetwork,
    OutOfNetwork,
}

/// Everything one file converted to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileConversion {
    /// ISA13 of the first interchange.
    pub interchange_control_number: Option<String>,
    /// ISA06, trimmed.
    pub sender_id: Option<String>,
    /// ISA08, trimmed.
    pub receiver_id: Option<String>,
    /// One entry per ST..SE, in file order.
    pub transaction_sets: Vec<TransactionSetResult>,
    /// Interchange and group errors.
    pub file_problems: Vec<Problem>,
    /// True when nothing from the file may be applied: any interchange or
    /// group error (conservative: we don't try to apply the other groups).
    pub rejects_everything: bool,
}

/// The envelope part of a conversion, as the streaming drivers return it.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct EnvelopeSummary {
    pub interchange_control_number: Option<String>,
    pub sender_id: Option<String>,
    pub receiver_id: Option<String>,
    pub file_problems: Vec<Problem>,
    pub rejects_everything: bool,
    /// Transaction sets seen.
    pub sets: usize,
}

impl EnvelopeSummary {
    /// The whole file's conversion: this envelope with its sets' results.
    pub fn into_conversion(self, transaction_sets: Vec<TransactionSetResult>) -> FileConversion {
        FileConversion {
            interchange_control_number: self.interchange_control_number,
            sender_id: self.sender_id,
            receiver_id: self.receiver_id,
            transaction_sets,
            file_problems: self.file_problems,
            rejects_everything: self.rejects_everything,
        }
    }
}

/// One transaction set's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionSetResult {
    /// GS06.
    pub group_control_number: String,
    /// ST02.
    pub control_number: String,
    /// `837P`, `837I`, `837D`, `835`, `834`, `278`, or ST01 when unsupported.
    pub transaction_type: String,
    /// The guide the set was read as, e.g. `005010X222A1` (ST03, else GS08;
    /// a base guide id such as `005010X222` is read as its errata version).
    pub implementation_guide: String,
    pub outcome: SetOutcome,
    /// Accepted but worth telling the sender; never a reason to reject, so
    /// never in the 999.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

/// Something a set's sender should fix that rejects nothing, positioned as
/// a [`Problem`] is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Segment position within the set (ST = 1).
    pub segment_position: Option<usize>,
    /// Segment position within the file (first ISA = 1).
    pub file_segment_position: Option<usize>,
    pub segment_id: Option<String>,
    /// `ST03`.
    pub element: Option<String>,
    pub message: String,
}

impl From<&x12::X12Warning> for Warning {
    fn from(w: &x12::X12Warning) -> Self {
        let p = &w.position;
        let segment_id = (!p.segment_id.is_empty()).then(|| p.segment_id.clone());
        Warning {
            segment_position: p.segment_in_set,
            file_segment_position: (p.segment_in_file > 0).then_some(p.segment_in_file),
            element: element_name(segment_id.as_deref(), p.element),
            segment_id,
            message: w.message.clone(),
        }
    }
}

/// `CLM05-3`: an element (and component) of a segment, as the report names it.
fn element_name(segment_id: Option<&str>, element: Option<x12::ElementPos>) -> Option<String> {
    element.map(|el| {
        let id = segment_id.unwrap_or("");
        match el.component {
            Some(c) => format!("{id}{:02}-{c}", el.element),
            None => format!("{id}{:02}", el.element),
        }
    })
}

/// Accepted with its changes, or rejected with its problems.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum SetOutcome {
    Accepted {
        /// In the order they must be applied.
        #[serde(skip)]
        changes: Vec<Change>,
        /// Claims (837 CLM, 835 CLP), members (834 INS) or prior
        /// authorizations (278 patient events) in the set.
        claims: usize,
    },
    Rejected {
        problems: Vec<Problem>,
    },
}

/// One problem, positioned for the JSON report and the 999.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Segment position within the set (ST = 1), the 999 IK302.
    pub segment_position: Option<usize>,
    /// Segment position within the file (first ISA = 1).
    pub file_segment_position: Option<usize>,
    pub segment_id: Option<String>,
    /// `CLM05-3`.
    pub element: Option<String>,
    /// Which acknowledgement segment carries [`Problem::code`], and so how
    /// much of the input the problem rejects.
    pub level: ProblemLevel,
    /// The 999 IK304 / IK403 / IK502 (or TA105, AK905) code.
    pub code: String,
    pub message: String,
}

/// The layer a [`Problem`] belongs to: the 999 (and TA1) need it to put the
/// code in the right segment, because the code values of IK304, IK403 and
/// IK502 overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemLevel {
    /// TA105: the whole interchange is rejected.
    Interchange,
    /// AK905: the functional group is rejected.
    Group,
    /// IK502: the transaction set is rejected.
    Set,
    /// IK304: a segment error inside a set.
    Segment,
    /// IK403: an element error inside a set.
    Element,
}

impl From<x12::AckLevel> for ProblemLevel {
    fn from(level: x12::AckLevel) -> Self {
        match level {
            x12::AckLevel::Interchange => Self::Interchange,
            x12::AckLevel::Group => Self::Group,
            x12::AckLevel::TransactionSet => Self::Set,
            x12::AckLevel::Segment => Self::Segment,
            x12::AckLevel::Element => Self::Element,
        }
    }
}

impl From<&X12Error> for Problem {
    fn from(e: &X12Error) -> Self {
        let p = &e.position;
        let segment_id = (!p.segment_id.is_empty()).then(|| p.segment_id.clone());
        let element = element_name(segment_id.as_deref(), p.element);
        Problem {
            segment_position: p.segment_in_set,
            file_segment_position: (p.segment_in_file > 0).then_some(p.segment_in_file),
            segment_id,
            element,
            level: e.ack_code().level.into(),
            code: e.ack_code().code.to_owned(),
            message: e.reason.clone(),
        }
    }
}

/// One resource to create, update or cancel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub resource_type: fhir::ResourceType,
    pub id: String,
    pub action: Action,
}

/// What to do with the resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    /// Merge into the current version (create when absent). Used for
    /// everything: Patient, Coverage, Organization, Practitioner, and EOB
    /// contributions from 837 (claim content) and 835 (adjudication,
    /// payment). The resource is complete and valid, with `meta.profile`.
    Merge(Resource),
    /// 837 CLM05-3 = 8 (void) or 835 reversal: the claim is cancelled.
    Cancel { reason: String },
}

/// A complete FHIR resource as compact JSON text: the mappers serialise
/// each resource once, straight from typed structs borrowing the X12 input,
/// so handing it to a writer costs a copy. [`Resource::to_value`] parses it
/// where a merge needs a tree ([`apply`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Resource(Box<str>);

impl Resource {
    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The resource as a `Value` (parsed each time).
    pub fn to_value(&self) -> Value {
        // Always valid JSON: only `serialise` and `from_value` make one.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// A resource from a `Value` (e.g. an edited copy of [`Resource::to_value`]).
    pub fn from_value(value: &Value) -> Self {
        Resource(value.to_string().into_boxed_str())
    }

    /// Text the crate's writer produced.
    pub(crate) fn from_json(json: &str) -> Self {
        Resource(Box::from(json))
    }

    /// Writes `value` through `scratch` (reused, so a big resource does not
    /// regrow a fresh buffer) into a string of exactly its size.
    pub(crate) fn serialise<T: write::ToJson + ?Sized>(value: &T, scratch: &mut String) -> Self {
        scratch.clear();
        value.write_json(scratch);
        Resource(Box::from(scratch.as_str()))
    }
}

impl From<&Value> for Resource {
    fn from(value: &Value) -> Self {
        Resource::from_value(value)
    }
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Resource {
    /// As the JSON it holds (not as a string).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// A mapper's verdict on one set: its claim (or member) count, or every
/// mapping error found (the set is then rejected).
pub(crate) type MapResult = Result<usize, Vec<X12Error>>;

impl FileConversion {
    /// Every change of every accepted set, in apply order (empty when the
    /// file is rejected as a whole).
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        let skip = self.rejects_everything;
        self.transaction_sets
            .iter()
            .filter(move |_| !skip)
            .filter_map(|s| match &s.outcome {
                SetOutcome::Accepted { changes, .. } => Some(changes.iter()),
                SetOutcome::Rejected { .. } => None,
            })
            .flatten()
    }
}
