//! FHIR R4 data types as small `Value` builders (the code systems are in
//! `fhir::systems`).
//!
//! The URLs and shapes are the ones `demo-data` uses (that crate keeps its
//! helpers private and works in whole cents from a catalogue, while we build
//! from borrowed X12 text), so a converted claim looks like a demo claim.

use fhir::systems::CARIN_SD;
use fhir::{Reference, ResourceType};
use serde_json::{Map, Value, json};

/// A coding; `display` is left out when empty.
pub fn coding(system: &str, code: &str, display: &str) -> Value {
    let mut m = Map::new();
    m.insert("system".into(), Value::from(system));
    m.insert("code".into(), Value::from(code));
    if !display.is_empty() {
        m.insert("display".into(), Value::from(display));
    }
    Value::Object(m)
}

/// A CodeableConcept with one coding.
pub fn concept(system: &str, code: &str, display: &str) -> Value {
    let mut m = Map::new();
    m.insert(
        "coding".into(),
        Value::Array(vec![coding(system, code, display)]),
    );
    Value::Object(m)
}

/// A CodeableConcept with one coding and a text.
pub fn concept_text(system: &str, code: &str, display: &str, text: &str) -> Value {
    let mut v = concept(system, code, display);
    if let Value::Object(m) = &mut v {
        m.insert("text".into(), Value::from(text));
    }
    v
}

/// A relative literal reference `Type/id`, optionally with a display.
pub fn reference(resource_type: ResourceType, id: &str, display: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert(
        "reference".into(),
        Value::from(Reference::new(resource_type, id).relative()),
    );
    if let Some(d) = display.filter(|d| !d.is_empty()) {
        m.insert("display".into(), Value::from(d));
    }
    Value::Object(m)
}

/// US dollars from whole cents, exact to the cent.
pub fn money(cents: i64) -> Value {
    json!({ "value": cents as f64 / 100.0, "currency": "USD" })
}

/// An identifier whose meaning is given by a type code (MB, NPI, TAX, uc…).
pub fn typed_identifier(
    type_system: &str,
    type_code: &str,
    type_display: &str,
    system: &str,
    value: &str,
) -> Value {
    json!({
        "type": concept(type_system, type_code, type_display),
        "system": system,
        "value": value,
    })
}

/// `meta` with just the profile: the store owns versionId and lastUpdated.
pub fn meta(profile: &str) -> Value {
    let mut url = String::with_capacity(CARIN_SD.len() + profile.len());
    url.push_str(CARIN_SD);
    url.push_str(profile);
    json!({ "profile": [url] })
}

/// A period; either end may be unknown.
pub fn period(start: Option<&str>, end: Option<&str>) -> Value {
    let mut m = Map::new();
    if let Some(s) = start {
        m.insert("start".into(), Value::from(s));
    }
    if let Some(e) = end {
        m.insert("end".into(), Value::from(e));
    }
    Value::Object(m)
}

/// An object from `(key, value)` pairs, leaving out nulls and empty arrays
/// (FHIR forbids both).
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if !is_empty(&v) {
            m.insert(k.to_owned(), v);
        }
    }
    Value::Object(m)
}

/// Null, `[]`, `{}` or `""`: nothing FHIR lets us write.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// An optional string as a JSON value (null when absent, dropped by [`object`]).
pub fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

/// A human name from X12 NM103 (family) / NM104 (given) / NM105 (middle).
pub fn human_name(family: Option<&str>, given: Option<&str>, middle: Option<&str>) -> Value {
    let given: Vec<Value> = given.into_iter().chain(middle).map(Value::from).collect();
    object([
        ("use", Value::from("official")),
        ("family", opt(family)),
        ("given", Value::Array(given)),
    ])
}

/// An address from N3/N4 values.
pub fn address(
    lines: &[&str],
    city: Option<&str>,
    state: Option<&str>,
    zip: Option<&str>,
) -> Value {
    object([
        (
            "line",
            Value::Array(lines.iter().map(|l| Value::from(*l)).collect()),
        ),
        ("city", opt(city)),
        ("state", opt(state)),
        ("postalCode", opt(zip)),
        ("country", Value::from("US")),
    ])
}
