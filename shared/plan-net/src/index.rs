//! The search index of one directory resource, extracted once at write time.

use fhir::{Reference, ResourceType};
use fhir_search::{SearchIndex, StringValue, TokenValue};
use serde_json::Value;

use crate::geo;
use crate::params::{Kind, Param, Source, params};

/// Look-up terms are sort keys; a DynamoDB sort key holds at most 1 KiB, and no
/// search needs more than this many characters of prefix to be selective.
pub const MAX_TERM_CHARS: usize = 128;

/// The address parts `address` searches (and which `address-*` parameters cover).
const ADDRESS_PARTS: &[&str] = &[
    "text",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];
/// The HumanName parts `name` searches.
const NAME_PARTS: &[&str] = &["text", "family", "given", "prefix", "suffix"];

/// Extracts what the directory search needs from `resource` of `resource_type`, by
/// the [`params`] table: a look-up term per reference, code, string part and
/// position (the key-based access paths), plus the values matched in memory.
/// Unusable values are skipped, never an error: validation happens before loading.
pub fn index_directory_resource(resource_type: ResourceType, resource: &Value) -> SearchIndex {
    let mut index = SearchIndex::default();
    for param in params(resource_type) {
        match param.kind {
            Kind::Id | Kind::LastUpdated => {}
            Kind::Reference => references(&mut index, param, resource),
            Kind::Token => tokens(&mut index, param, resource),
            Kind::String => strings(&mut index, param, resource),
            Kind::Near => position(&mut index, resource),
        }
    }
    index
}

fn values(resource: &Value, source: Source) -> Vec<&Value> {
    match source {
        Source::Meta => Vec::new(),
        Source::Path(path) => values_at(resource, path),
        Source::Extension(url) => values_at(resource, &["extension"])
            .into_iter()
            .filter(|e| e.get("url").and_then(Value::as_str) == Some(url))
            .filter_map(|e| e.get("valueReference"))
            .collect(),
    }
}

fn references(index: &mut SearchIndex, param: &Param, resource: &Value) {
    for value in values(resource, param.source) {
        let Some(reference) = value
            .get("reference")
            .and_then(Value::as_str)
            .and_then(Reference::parse)
        else {
            continue;
        };
        if !param.targets.contains(&reference.resource_type) {
            continue;
        }
        let reference = Reference::new(reference.resource_type, reference.id);
        lookup(index, param.name, &reference.relative());
        let entry = (param.name.to_owned(), reference);
        if !index.references.contains(&entry) {
            index.references.push(entry);
        }
    }
}

fn tokens(index: &mut SearchIndex, param: &Param, resource: &Value) {
    let text_key = format!("{}:text", param.name);
    for value in values(resource, param.source) {
        let mut codings: Vec<(Option<&str>, &str, Option<&str>)> = Vec::new();
        match value {
            Value::String(code) => codings.push((None, code, None)),
            Value::Object(object) => {
                if let Some(list) = object.get("coding").and_then(Value::as_array) {
                    for coding in list {
                        if let Some(code) = coding.get("code").and_then(Value::as_str) {
                            let system = coding.get("system").and_then(Value::as_str);
                            let display = coding.get("display").and_then(Value::as_str);
                            codings.push((system, code, display));
                        }
                    }
                    if let Some(text) = object.get("text").and_then(Value::as_str) {
                        string(index, &text_key, text, false);
                    }
                } else if let Some(v) = object.get("value").and_then(Value::as_str) {
                    codings.push((object.get("system").and_then(Value::as_str), v, None));
                }
            }
            _ => {}
        }
        for (system, code, display) in codings {
            if code.is_empty() {
                continue;
            }
            let entry = TokenValue {
                param: param.name.to_owned(),
                system: system.map(str::to_owned),
                code: code.to_owned(),
            };
            if !index.tokens.contains(&entry) {
                index.tokens.push(entry);
            }
            lookup(index, param.name, code);
            if let Some(display) = display {
                string(index, &text_key, display, false);
            }
        }
    }
}

fn strings(index: &mut SearchIndex, param: &Param, resource: &Value) {
    for value in values(resource, param.source) {
        match value {
            Value::String(text) => string(index, param.name, text, true),
            Value::Object(object) => {
                let parts = if object.contains_key("family") || object.contains_key("given") {
                    NAME_PARTS
                } else {
                    ADDRESS_PARTS
                };
                for part in parts {
                    for text in strings_at(value, &[part]) {
                        string(index, param.name, text, true);
                    }
                }
            }
            _ => {}
        }
    }
}

fn string(index: &mut SearchIndex, key: &str, text: &str, with_lookup: bool) {
    if text.trim().is_empty() {
        return;
    }
    let entry = StringValue::new(key, text);
    if with_lookup {
        lookup(index, key, entry.folded());
    }
    if !index.strings.contains(&entry) {
        index.strings.push(entry);
    }
}

fn position(index: &mut SearchIndex, resource: &Value) {
    let Some(position) = resource.get("position") else {
        return;
    };
    let coordinate = |key: &str| position.get(key).and_then(Value::as_f64);
    if let (Some(lat), Some(lon)) = (coordinate("latitude"), coordinate("longitude"))
        && geo::valid(lat, lon)
    {
        index.position = Some([lat, lon]);
        lookup(index, "near", &geo::near_term(lat, lon));
    }
}

/// One look-up term: cut to [`MAX_TERM_CHARS`] (a longer search value is cut the same
/// way, and the full value is matched in memory).
fn lookup(index: &mut SearchIndex, param: &str, term: &str) {
    let term = term_prefix(term);
    let entry = (param.to_owned(), term);
    if !entry.1.is_empty() && !index.lookup_terms.contains(&entry) {
        index.lookup_terms.push(entry);
    }
}

pub(crate) fn term_prefix(term: &str) -> String {
    term.chars().take(MAX_TERM_CHARS).collect()
}

/// Every value at `path`, flattening arrays at each step (FHIRPath-style).
pub(crate) fn values_at<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut current = vec![value];
    for key in path {
        current = current
            .into_iter()
            .filter_map(|v| v.get(key))
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            })
            .collect();
    }
    current
}

pub(crate) fn strings_at<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a str> {
    values_at(value, path)
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}
