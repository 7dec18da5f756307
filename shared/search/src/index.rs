use fhir::Reference;
use serde::{Deserialize, Serialize};

/// The search-relevant values of one resource version, extracted once at write time
/// and stored next to the resource, so that search never re-parses resource bodies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchIndex {
    /// The member (Patient id) whose compartment holds this resource, by the explicit
    /// per-type rule; `None` for directory types (Organization, Practitioner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compartment: Option<String>,
    /// References to other resources, by search parameter (or include) name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<(String, Reference)>,
    /// Terms for directory look-ups: (parameter, normalised term).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookup_terms: Vec<(String, String)>,
}
