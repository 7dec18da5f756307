//! Payer-to-Payer (CMS-0057-F, 42 CFR 422.121(b)): the answering side of Da Vinci
//! HRex `$member-match`.
//!
//! * [`matching`]: the match rule (what must agree, what is normalised) and the
//!   candidate search, by key look-ups only;
//! * [`consent`]: whether this plan can honour the HRex Consent sent with a request;
//! * [`sensitive`]: which resources a `#sensitive` consent leaves out (42 CFR Part 2
//!   and the plan's configured code ranges);
//! * [`budget`]: each client's hourly budget of failed matches (brute-force guard);
//! * [`bulk_match`]: `$bulk-member-match`, many members matched on the export
//!   workers, answered as three Groups;
//! * [`data_export`]: `$davinci-data-export`'s parameters (the job runs on
//!   `bulk_export`, which applies `bulk_export::p2p`'s sharing rule);
//! * [`everything`]: `GET /Patient/{id}/$everything` for a member the client matched;
//! * [`api`]: both over plain `http` types;
//! * [`asking`]: this plan as the new payer: the other plans, members' requests, and
//!   one exchange run with its retries; [`bulk_asking`]: that run over PDex's bulk
//!   pair, streamed and resumable; [`remote`]: the other plan's API over HTTPS;
//! * [`import`]: the asking side's import of another plan's answer (namespaced ids,
//!   rewritten references, source marks and Provenance).
//!
//! The domain modules are pure; [`api`], [`budget`] and [`asking`] reach storage only
//! through the `fhir-store` ports, so the same code runs on redb and DynamoDB.

pub mod api;
pub mod asking;
pub mod budget;
pub mod bulk_asking;
pub mod bulk_match;
pub mod consent;
pub mod data_export;
pub mod everything;
pub mod import;
pub mod matching;
pub mod remote;
pub mod sensitive;

pub use api::{MEMBER_MATCH_PATH, MemberMatchApi, MemberMatchConfig};
pub use consent::{ConsentPolicy, ConsentRefusal};
pub use matching::{MatchOutcome, MatchRequest};
pub use sensitive::SensitivePolicy;
