use fhir::Reference;
use serde::{Deserialize, Serialize};

/// The search-relevant values of one resource version, extracted once at write time
/// and stored next to the resource, so that search never re-parses resource bodies.
///
/// It is deserialised on every search, so the new value lists use one- or
/// two-letter serde names and are left out when empty.
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
    /// Token values (codes and identifiers), by parameter.
    #[serde(rename = "tk", default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenValue>,
    /// String values (name and address parts), by index key.
    #[serde(rename = "st", default, skip_serializing_if = "Vec::is_empty")]
    pub strings: Vec<StringValue>,
    /// Date values as ranges, by parameter.
    #[serde(rename = "dt", default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<DateValue>,
    /// A position as `[latitude, longitude]` in degrees (directory Locations), for
    /// distance checks of `near` searches.
    #[serde(rename = "geo", default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 2]>,
}

/// One `Coding` or `Identifier` (or bare code) under a token parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenValue {
    #[serde(rename = "p")]
    pub param: String,
    /// `None` when the resource gives no system: only then does `|code` match.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code (or identifier value), exactly as in the resource.
    #[serde(rename = "c")]
    pub code: String,
}

/// One string part, kept as written (for `:exact`) and folded (for the default
/// starts-with and `:contains`). The folded copy is stored only when it differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StringValue {
    #[serde(rename = "p")]
    pub param: String,
    #[serde(rename = "v")]
    pub value: String,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub folded: Option<String>,
}

impl StringValue {
    pub fn new(param: &str, value: &str) -> Self {
        let folded = crate::text::fold(value);
        let folded = (folded != value).then_some(folded);
        StringValue {
            param: param.to_owned(),
            value: value.to_owned(),
            folded,
        }
    }

    /// The case- and accent-folded form.
    pub fn folded(&self) -> &str {
        self.folded.as_deref().unwrap_or(&self.value)
    }
}

/// One date value as a half-open `[start, end)` range of unix milliseconds; an open
/// end (a Period without start or end) is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateValue {
    #[serde(rename = "p")]
    pub param: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}
