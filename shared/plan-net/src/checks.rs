//! The checks a directory resource must pass before it is loaded.

use fhir::{Reference, ResourceType};
use serde_json::Value;

use crate::index::values_at;
use crate::params::{Kind, Source, params};
use crate::profiles::Profile;

pub const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";
pub const NUCC_SYSTEM: &str = "http://nucc.org/provider-taxonomy";

/// One thing wrong with a resource: where, and a plain reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub field: String,
    pub reason: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A 10-digit NPI whose last digit is the Luhn check digit over `80840` + the first
/// nine (the CMS NPI check-digit rule).
pub fn npi_is_valid(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = format!("80840{npi}")
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The NUCC Health Care Provider Taxonomy code format: ten characters, nine digits
/// or capital letters and a final `X` (e.g. `207Q00000X`).
pub fn nucc_code_is_valid(code: &str) -> bool {
    code.len() == 10
        && code.ends_with('X')
        && code[..9]
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// USPS codes of the states, DC and the territories.
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY", "AS", "GU", "MP", "PR", "VI", "UM", "AA", "AE", "AP",
];

pub fn us_state_is_valid(state: &str) -> bool {
    US_STATES.contains(&state)
}

/// `12345` or `12345-6789`.
pub fn zip_is_valid(zip: &str) -> bool {
    let b = zip.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => digits(b),
        10 => digits(&b[..5]) && b[5] == b'-' && digits(&b[6..]),
        _ => false,
    }
}

/// The elements each profile makes mandatory (1..1 or 1..*) that we check.
pub fn required_elements(profile: Profile) -> &'static [&'static str] {
    match profile {
        Profile::Endpoint => &["status", "connectionType", "payloadType", "address"],
        Profile::HealthcareService => &["active", "category"],
        Profile::InsurancePlan => &["name", "type", "ownedBy", "administeredBy"],
        Profile::Location => &["name", "address"],
        Profile::Network => &["active", "name", "partOf"],
        Profile::Organization => &["active", "name"],
        Profile::OrganizationAffiliation => &["active"],
        Profile::Practitioner => &["name"],
        Profile::PractitionerRole => &["active"],
    }
}

/// Every problem of one directory resource on its own: required elements, NPIs,
/// NUCC codes, US addresses. References are checked by the loader, which knows what
/// the directory and the file hold ([`references`] lists them).
pub fn check_resource(resource_type: ResourceType, resource: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(profile) = Profile::for_resource(resource_type, resource) else {
        problems.push(Problem::new(
            "resourceType",
            format!("{resource_type} is not one of the directory's types"),
        ));
        return problems;
    };
    for element in required_elements(profile) {
        let present = resource.get(*element).is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.trim().is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        });
        if !present {
            problems.push(Problem::new(
                *element,
                format!("is required by the Plan-Net {profile:?} profile"),
            ));
        }
    }
    for identifier in values_at(resource, &["identifier"]) {
        if identifier.get("system").and_then(Value::as_str) == Some(NPI_SYSTEM) {
            let value = identifier
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !npi_is_valid(value) {
                problems.push(Problem::new(
                    "identifier",
                    format!("NPI '{value}' is not 10 digits with a valid check digit"),
                ));
            }
        }
    }
    for path in [
        &["specialty"][..],
        &["qualification", "code"][..],
        &["code"][..],
    ] {
        for concept in values_at(resource, path) {
            for coding in values_at(concept, &["coding"]) {
                if coding.get("system").and_then(Value::as_str) == Some(NUCC_SYSTEM) {
                    let code = coding.get("code").and_then(Value::as_str).unwrap_or("");
                    if !nucc_code_is_valid(code) {
                        problems.push(Problem::new(
                            path.join("."),
                            format!("'{code}' is not a NUCC taxonomy code (nine digits or capitals and a final X)"),
                        ));
                    }
                }
            }
        }
    }
    for address in values_at(resource, &["address"]) {
        let country = address
            .get("country")
            .and_then(Value::as_str)
            .unwrap_or("US");
        if !matches!(country, "US" | "USA") {
            continue;
        }
        if let Some(state) = address.get("state").and_then(Value::as_str)
            && !us_state_is_valid(state)
        {
            problems.push(Problem::new(
                "address.state",
                format!("'{state}' is not a US state or territory code"),
            ));
        }
        if let Some(zip) = address.get("postalCode").and_then(Value::as_str)
            && !zip_is_valid(zip)
        {
            problems.push(Problem::new(
                "address.postalCode",
                format!("'{zip}' is not a ZIP code (12345 or 12345-6789)"),
            ));
        }
    }
    if let Some(position) = resource.get("position") {
        let lat = position.get("latitude").and_then(Value::as_f64);
        let lon = position.get("longitude").and_then(Value::as_f64);
        if !matches!((lat, lon), (Some(a), Some(b)) if crate::geo::valid(a, b)) {
            problems.push(Problem::new(
                "position",
                "latitude must be within ±90 and longitude within ±180",
            ));
        }
    }
    problems
}

/// The literal references of a resource that the directory's search parameters
/// follow, with the element they sit in: the loader checks that each resolves.
/// A reference to a type outside the directory is reported as a problem.
pub fn references(
    resource_type: ResourceType,
    resource: &Value,
) -> (Vec<(String, Reference)>, Vec<Problem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for param in params(resource_type)
        .iter()
        .filter(|p| p.kind == Kind::Reference)
    {
        let (field, values) = match param.source {
            Source::Path(path) => (path.join("."), values_at(resource, path)),
            Source::Extension(url) => (
                format!("extension({url})"),
                values_at(resource, &["extension"])
                    .into_iter()
                    .filter(|e| e.get("url").and_then(Value::as_str) == Some(url))
                    .filter_map(|e| e.get("valueReference"))
                    .collect(),
            ),
            Source::Meta => continue,
        };
        for value in values {
            let Some(text) = value.get("reference").and_then(Value::as_str) else {
                continue;
            };
            match Reference::parse(text) {
                Some(r) if param.targets.contains(&r.resource_type) => {
                    if !found.iter().any(|(_, x): &(String, Reference)| *x == r) {
                        found.push((field.clone(), Reference::new(r.resource_type, r.id)));
                    }
                }
                _ => problems.push(Problem::new(
                    field.clone(),
                    format!(
                        "'{text}' is not a reference to a {}",
                        param
                            .targets
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                )),
            }
        }
    }
    (found, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit_follows_the_cms_luhn_rule() {
        // The CMS guidance's example: 123456789 → check digit 3.
        assert!(npi_is_valid("1234567893"));
        assert!(!npi_is_valid("1234567890"));
        assert!(!npi_is_valid("123456789"));
        assert!(!npi_is_valid("12345678a3"));
    }

    #[test]
    fn nucc_codes_are_nine_characters_and_an_x() {
        assert!(nucc_code_is_valid("207Q00000X"));
        assert!(nucc_code_is_valid("1223G0001X"));
        assert!(!nucc_code_is_valid("207Q00000"));
        assert!(!nucc_code_is_valid("207q00000X"));
        assert!(!nucc_code_is_valid("207Q000000"));
    }

    #[test]
    fn states_and_zips() {
        assert!(us_state_is_valid("OH") && us_state_is_valid("PR"));
        assert!(!us_state_is_valid("Ohio") && !us_state_is_valid("XX"));
        assert!(zip_is_valid("43215") && zip_is_valid("43215-1234"));
        assert!(!zip_is_valid("4321") && !zip_is_valid("43215 1234") && !zip_is_valid("ABCDE"));
    }
}
