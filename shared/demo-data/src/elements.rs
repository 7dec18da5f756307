//! FHIR R4 data types as small JSON builders.
//!
//! Every resource is assembled from these, so a data type has exactly one shape
//! everywhere (a Money always carries USD, a Reference is always `Type/id`).

use fhir::{Reference, ResourceType};
use serde_json::{Value, json};

use crate::date::Date;
use fhir::systems;

/// A code from a code system, with its display text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Code {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

impl Code {
    pub(crate) const fn new(
        system: &'static str,
        code: &'static str,
        display: &'static str,
    ) -> Code {
        Code {
            system,
            code,
            display,
        }
    }
}

impl From<fhir::CodingParts> for Code {
    fn from((system, code, display): fhir::CodingParts) -> Code {
        Code::new(system, code, display)
    }
}

pub(crate) fn coding(code: Code) -> Value {
    if code.display.is_empty() {
        json!({ "system": code.system, "code": code.code })
    } else {
        json!({ "system": code.system, "code": code.code, "display": code.display })
    }
}

/// A CodeableConcept with one coding.
pub(crate) fn concept(code: Code) -> Value {
    json!({ "coding": [coding(code)] })
}

/// A CodeableConcept with one coding and a human text.
pub(crate) fn concept_text(code: Code, text: &str) -> Value {
    json!({ "coding": [coding(code)], "text": text })
}

/// A relative, unversioned literal reference `Type/id`, the only form we write.
pub(crate) fn reference(resource_type: ResourceType, id: &str) -> Value {
    json!({ "reference": Reference::new(resource_type, id).relative() })
}

pub(crate) fn reference_display(resource_type: ResourceType, id: &str, display: &str) -> Value {
    json!({ "reference": Reference::new(resource_type, id).relative(), "display": display })
}

/// US dollars; amounts are kept in cents internally so that sums are exact.
pub(crate) fn money(cents: i64) -> Value {
    json!({ "value": cents as f64 / 100.0, "currency": "USD" })
}

pub(crate) fn period(start: Date, end: Date) -> Value {
    json!({ "start": start.to_string(), "end": end.to_string() })
}

pub(crate) fn open_period(start: Date) -> Value {
    json!({ "start": start.to_string() })
}

/// An identifier whose meaning is given by a `type` code (MB, NPI, TAX, uc, …).
pub(crate) fn typed_identifier(type_code: Code, system: &str, value: &str) -> Value {
    json!({ "type": concept(type_code), "system": system, "value": value })
}

pub(crate) fn quantity(value: i64) -> Value {
    json!({ "value": value })
}

pub(crate) fn quantity_unit(value: i64, unit: &str) -> Value {
    json!({ "value": value, "unit": unit })
}

/// `meta` with the one CARIN profile the resource claims and its last update.
pub(crate) fn meta(profile: &str, last_updated: &str) -> Value {
    json!({ "profile": [systems::carin_profile(profile)], "lastUpdated": last_updated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_relative_and_money_is_exact_to_the_cent() {
        assert_eq!(
            reference(ResourceType::Coverage, "coverage-m001"),
            json!({ "reference": "Coverage/coverage-m001" })
        );
        assert_eq!(money(12_345)["value"], json!(123.45));
        assert_eq!(money(0)["value"], json!(0.0));
    }
}
