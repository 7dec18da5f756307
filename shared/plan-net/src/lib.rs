//! Da Vinci PDEX Plan-Net (STU 1.1.0), the public provider directory, as pure logic.
//!
//! * [`profiles`]: the nine profiles and which one a resource carries;
//! * [`params`]: every search parameter the Plan-Net server CapabilityStatement marks
//!   SHALL, with its chains, and the `_include` / `_revinclude` lists. These tables are
//!   what the directory search evaluates and what its CapabilityStatement lists;
//! * [`index_directory_resource`]: the [`fhir_search::SearchIndex`] stored with each
//!   resource: look-up terms (one DynamoDB partition per parameter, sorted by term),
//!   tokens, strings, references and the position;
//! * [`parse_directory_search`]: a query into a [`DirectorySearch`] (criteria, chains,
//!   `_has`, `near`, includes), and [`DirectorySearch::matches`] on one index;
//! * [`geo`]: geohash cells for `near`, and great-circle distance;
//! * [`checks`]: NPI check digit, NUCC taxonomy format, US state and ZIP, and the
//!   elements each profile requires.
//!
//! Nothing here touches storage: the `directory-api` crate plans and runs searches.

pub mod checks;
pub mod geo;
mod index;
mod matching;
pub use matching::Resolved;
pub mod params;
pub mod profiles;
mod query;

pub use index::index_directory_resource;
pub use query::{
    ChainTest, Criterion, DirectorySearch, HasTest, IncludeSpec, NearTest, RevIncludeSpec, Test,
    parse_directory_search,
};

#[cfg(test)]
mod tests;
