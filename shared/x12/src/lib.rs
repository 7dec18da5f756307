//! Zero-copy, streaming reader for health-plan X12 005010 EDI.
//!
//! Supported implementation guides: 837P (005010X222A1/A2), 837I
//! (005010X223A2/A3), 837D (005010X224A2/A3), 835 (005010X221A1), 834
//! (005010X220A1) and 278 (005010X217, request and response). The crate is
//! pure parsing (and writing, to a `String`): no FHIR, no I/O beyond
//! `std::io::Read`.
//!
//! Layers, bottom up:
//! - [`delimiters`]: the four delimiters from the fixed-width ISA;
//! - [`segment`]: zero-copy segments with element/component/repetition access;
//! - [`envelope`]: ISA/GS headers and cross-set envelope checks;
//! - [`transaction`]: per-set checks and the result type ([`SetResult`]);
//! - [`guides`] + [`loops`]: table-driven loop recognition and the loop view;
//! - [`reader`] (in memory) and [`stream`] (bounded memory from `Read`);
//! - [`write`]: the envelope writer (ISA/GS/ST with SE, GE and IEA counted);
//! - [`generate`]: synthetic realistic files for benchmarks and tests.
//!
//! ```
//! let bytes = x12::generate::generate_837p(2, 7);
//! let mut reader = x12::Reader::new(&bytes)?;
//! for set in reader.by_ref() {
//!     let set = set.expect("generated files are valid");
//!     for claim in set.loops("2300") {
//!         let clm = claim.trigger().expect("CLM opens 2300");
//!         let frequency = clm.component(5, 3);
//!         assert_eq!(frequency, Some("1"));
//!         for line in claim.children_named("2400") {
//!             let sv1 = line.segment("SV1").expect("SV1");
//!             assert!(sv1.component(1, 2).is_some());
//!         }
//!     }
//! }
//! assert!(reader.finish().is_clean());
//! # Ok::<(), x12::X12Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod delimiters;
pub mod envelope;
pub mod error;
pub mod generate;
pub mod guides;
pub mod loops;
pub mod reader;
pub mod segment;
mod split;
pub mod stream;
pub mod transaction;
pub mod values;
pub mod walk;
pub mod write;

pub use delimiters::Delimiters;
pub use envelope::{EnvelopeReport, GroupHeader, InterchangeHeader};
pub use error::{AckCode, AckLevel, ElementPos, ErrorKind, Position, X12Error, X12Warning};
pub use guides::{Guide, TransactionKind};
pub use loops::Loop;
pub use reader::{Parsed, Reader, read};
pub use segment::{Composite, Segment};
pub use stream::{OwnedSet, StreamReader};
pub use transaction::{Limits, RejectedSet, SetResult, TransactionSet};
pub use values::{Date, Decimal, Period};
