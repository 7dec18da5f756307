//! FHIR R4 vocabulary that every other crate speaks.
//!
//! This crate knows nothing about storage, search or transport. It names the resource
//! types we serve, says what a valid id and reference look like, and builds the two
//! framing resources every response uses: `OperationOutcome` and `Bundle`.

mod claim_kind;
pub mod clock;
mod identifiers;
mod instant;
mod outcome;
mod reference;
mod resource_type;
pub mod systems;

pub use claim_kind::{ClaimKind, CodingParts};
pub use identifiers::{is_valid_npi, is_valid_tin};
pub use instant::{Instant, InstantError};
pub use outcome::{IssueCode, OperationOutcome, Severity};
pub use reference::{Reference, is_valid_id};
pub use resource_type::{ResourceType, UnknownResourceType};

/// The FHIR version every resource and the CapabilityStatement declare.
pub const FHIR_VERSION: &str = "4.0.1";

/// The CARIN Blue Button server CapabilityStatement we implement (STU 2.0.0 – 2.2.0).
pub const CARIN_BB_CAPABILITY_STATEMENT: &str =
    "http://hl7.org/fhir/us/carin-bb/CapabilityStatement/c4bb";
