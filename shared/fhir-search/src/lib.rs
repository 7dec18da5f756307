//! FHIR R4 search for the CARIN Blue Button resources: which parameters exist,
//! what each resource contributes to them, how a query is parsed, and whether a
//! resource matches. Pure: no I/O, no transport, no storage.
//!
//! The flow:
//! 1. At write time, [`index_resource`] extracts a small [`SearchIndex`] that is
//!    stored next to the resource body.
//! 2. At search time, [`parse_search`] turns the request parameters into a
//!    [`SearchRequest`]. Storage uses its planning hints ([`SearchRequest::ids`],
//!    [`SearchRequest::patient_ids`], [`SearchRequest::last_updated_bounds`],
//!    [`SearchRequest::lookup_hint`]) to narrow candidates, and
//!    [`SearchRequest::matches`] decides each one from its index alone.
//! 3. [`IncludeRequest::targets_of`] lists what each `_include` brings in.
//!
//! [`search_params`] and [`includes`] are the tables the CapabilityStatement is
//! generated from, so what is advertised is exactly what is implemented.

mod date;
mod error;
mod extract;
pub mod index;
mod matching;
pub mod member_id;
mod params;
mod query;
mod request;
pub mod roster;
mod text;

pub use date::{DateRange, Prefix, parse_range};
pub use error::SearchError;
pub use extract::index_resource;
pub use index::{DateValue, SearchIndex, StringValue, TokenValue};
pub use params::{
    IncludeDef, ParamKind, SearchParamDef, include_def, includes, search_param, search_params,
};
pub use query::{
    Handling, IncludeRequest, LookupHint, SearchRequest, parse_search, parse_search_at,
};
pub use text::{fold, percent_encode, split_once_unescaped, split_unescaped, unescape};

#[cfg(test)]
mod tests;
