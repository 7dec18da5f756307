//! FHIR R4 search for the CARIN Blue Button resources. (Being written: see README of the crate's task.)

pub mod index;

pub use index::SearchIndex;
