//! Which resources are *sensitive*: those a member's HRex Consent with policy
//! `#sensitive` ("only non-sensitive data") keeps from another plan.
//!
//! A resource is sensitive when any `Coding` anywhere in it (a Condition's `code`, an
//! EOB's `diagnosis`, `procedure` or `item.productOrService`, …) falls in one of the
//! policy's code ranges. Looking at every Coding rather than named paths means a new
//! resource type or a code in an unexpected element is still caught: the check errs
//! towards leaving data out.
//!
//! # The default list ([`SensitivePolicy::default`])
//!
//! **The plan must review it** with its privacy officer and counsel before relying on
//! it: state law (e.g. on reproductive health, HIV or minors' records) may require
//! more, and coding practice varies. It covers:
//!
//! | category | ICD-10-CM | CPT / HCPCS |
//! |---|---|---|
//! | substance use disorder (42 CFR Part 2) | F10–F16, F18–F19 (F17 nicotine is not Part 2), Z71.41, Z71.51 | H0001–H0050, 99408–99409, G0396–G0397, J0571–J0575 |
//! | mental health | F20–F69, F90–F99 | 90785–90899 |
//! | HIV | B20, Z21, R75, Z20.6, O98.7 | 86701–86703, 87389–87391, 87534–87539 |
//! | reproductive and sexual health | O00–O08, Z30–Z33, N96–N98, A50–A64 | 59840–59857, 58300–58301, S0199 |
//!
//! Codes are compared without dots and upper-cased. A range `from`–`to` holds every
//! code `c` with `from` ≤ `c` and (`c` ≤ `to` or `c` starts with `to`), so `F10`–`F19`
//! takes `F10.20` and `F19.99` but not `F20`. A plan replaces the list with its own
//! JSON ([`SensitivePolicy::from_json`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The setting that stands for the documented default list
/// ([`SensitivePolicy::configured`]).
pub const DEFAULT_SETTING: &str = "default";

/// The code systems a range can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CodeKind {
    /// ICD-10-CM diagnoses (and ICD-10 for clients that send the WHO system).
    Icd10Cm,
    /// CPT and HCPCS Level II procedures and services.
    CptHcpcs,
    /// ICD-10-PCS inpatient procedures.
    Icd10Pcs,
}

impl CodeKind {
    fn of_system(system: &str) -> Option<CodeKind> {
        match system.trim_end_matches('/') {
            fhir::systems::ICD10_CM | "http://hl7.org/fhir/sid/icd-10" => Some(CodeKind::Icd10Cm),
            fhir::systems::CPT
            | fhir::systems::HCPCS
            | "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets" => Some(CodeKind::CptHcpcs),
            fhir::systems::ICD10_PCS => Some(CodeKind::Icd10Pcs),
            _ => None,
        }
    }
}

/// One range of sensitive codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRange {
    /// What the range is (e.g. `substance-use`): for the plan's review, not used.
    pub category: String,
    pub system: CodeKind,
    pub from: String,
    pub to: String,
}

impl CodeRange {
    fn new(category: &str, system: CodeKind, from: &str, to: &str) -> Self {
        CodeRange {
            category: category.to_owned(),
            system,
            from: normalise(from),
            to: normalise(to),
        }
    }

    fn holds(&self, code: &str) -> bool {
        code >= self.from.as_str() && (code <= self.to.as_str() || code.starts_with(&self.to))
    }
}

/// The list of sensitive code ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitivePolicy {
    pub ranges: Vec<CodeRange>,
}

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the sensitive-code list is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("range {index}: `from` and `to` must be non-empty with from <= to")]
    Range { index: usize },
}

impl Default for SensitivePolicy {
    /// The documented default (see the module docs). A plan must review it.
    fn default() -> Self {
        use CodeKind::{CptHcpcs, Icd10Cm};
        let sud = "substance-use";
        let mh = "mental-health";
        let hiv = "hiv";
        let repro = "reproductive-sexual-health";
        let table: &[(&str, CodeKind, &str, &str)] = &[
            (sud, Icd10Cm, "F10", "F16"),
            (sud, Icd10Cm, "F18", "F19"),
            (sud, Icd10Cm, "Z71.41", "Z71.41"),
            (sud, Icd10Cm, "Z71.51", "Z71.51"),
            (sud, CptHcpcs, "H0001", "H0050"),
            (sud, CptHcpcs, "99408", "99409"),
            (sud, CptHcpcs, "G0396", "G0397"),
            (sud, CptHcpcs, "J0571", "J0575"),
            (mh, Icd10Cm, "F20", "F69"),
            (mh, Icd10Cm, "F90", "F99"),
            (mh, CptHcpcs, "90785", "90899"),
            (hiv, Icd10Cm, "B20", "B20"),
            (hiv, Icd10Cm, "Z21", "Z21"),
            (hiv, Icd10Cm, "R75", "R75"),
            (hiv, Icd10Cm, "Z20.6", "Z20.6"),
            (hiv, Icd10Cm, "O98.7", "O98.7"),
            (hiv, CptHcpcs, "86701", "86703"),
            (hiv, CptHcpcs, "87389", "87391"),
            (hiv, CptHcpcs, "87534", "87539"),
            (repro, Icd10Cm, "O00", "O08"),
            (repro, Icd10Cm, "Z30", "Z33"),
            (repro, Icd10Cm, "N96", "N98"),
            (repro, Icd10Cm, "A50", "A64"),
            (repro, CptHcpcs, "59840", "59857"),
            (repro, CptHcpcs, "58300", "58301"),
            (repro, CptHcpcs, "S0199", "S0199"),
        ];
        SensitivePolicy {
            ranges: table
                .iter()
                .map(|&(category, system, from, to)| CodeRange::new(category, system, from, to))
                .collect(),
        }
    }
}

impl SensitivePolicy {
    /// A plan's own list: `{"ranges": [{"category", "system": "icd10-cm" |
    /// "cpt-hcpcs" | "icd10-pcs", "from", "to"}]}`.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let parsed: SensitivePolicy = serde_json::from_str(text)?;
        let ranges = parsed
            .ranges
            .into_iter()
            .enumerate()
            .map(|(index, r)| {
                let range = CodeRange::new(&r.category, r.system, &r.from, &r.to);
                if range.from.is_empty() || range.to.is_empty() || range.from > range.to {
                    return Err(PolicyError::Range { index });
                }
                Ok(range)
            })
            .collect::<Result<_, _>>()?;
        Ok(SensitivePolicy { ranges })
    }

    /// A plan's setting: the word `default` (the documented list, which the plan has
    /// reviewed and keeps) or its own list as [`SensitivePolicy::from_json`] reads it.
    /// There is no silent fallback: text that is neither is an error, so a mistyped
    /// list stops the service rather than sharing what the plan meant to keep back.
    pub fn configured(text: &str) -> Result<Self, PolicyError> {
        if text.trim() == DEFAULT_SETTING {
            return Ok(SensitivePolicy::default());
        }
        SensitivePolicy::from_json(text)
    }

    /// Whether one coded value is sensitive.
    pub fn is_sensitive_code(&self, system: &str, code: &str) -> bool {
        let Some(kind) = CodeKind::of_system(system) else {
            return false;
        };
        let code = normalise(code);
        self.ranges
            .iter()
            .any(|r| r.system == kind && r.holds(&code))
    }

    /// Whether a resource (EOB, Condition, Procedure, …) holds any sensitive code, so
    /// an exchange under a `#sensitive` consent leaves it out.
    pub fn is_sensitive(&self, resource: &Value) -> bool {
        let mut stack = vec![resource];
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let (Some(Value::String(system)), Some(Value::String(code))) =
                        (map.get("system"), map.get("code"))
                        && self.is_sensitive_code(system, code)
                    {
                        return true;
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        false
    }
}

fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eob_with_diagnosis(code: &str) -> Value {
        json!({
            "resourceType": "ExplanationOfBenefit",
            "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [
                {"system": fhir::systems::ICD10_CM, "code": code}
            ]}}],
            "item": [{"sequence": 1, "productOrService": {"coding": [
                {"system": fhir::systems::CPT, "code": "99213"}
            ]}}]
        })
    }

    #[test]
    fn substance_use_diagnoses_are_sensitive_under_42_cfr_part_2() {
        let policy = SensitivePolicy::default();
        assert!(policy.is_sensitive(&eob_with_diagnosis("F10.20")));
        assert!(policy.is_sensitive(&eob_with_diagnosis("F19.99")));
        assert!(policy.is_sensitive(&eob_with_diagnosis("f1120")));
        assert!(
            !policy.is_sensitive(&eob_with_diagnosis("F17.210")),
            "nicotine dependence is not Part 2"
        );
    }

    #[test]
    fn mental_health_hiv_and_reproductive_health_are_sensitive_by_default() {
        let policy = SensitivePolicy::default();
        for code in ["F32.9", "F99", "B20", "Z21", "O03.9", "Z30.011", "A54.00"] {
            assert!(policy.is_sensitive(&eob_with_diagnosis(code)), "{code}");
        }
        let condition = json!({"resourceType": "Condition", "code": {"coding": [
            {"system": fhir::systems::ICD10_CM, "code": "F41.1"}]}});
        assert!(policy.is_sensitive(&condition));
    }

    #[test]
    fn ordinary_care_is_not_sensitive() {
        let policy = SensitivePolicy::default();
        for code in ["E11.9", "I10", "J45.909", "F20", "F70"] {
            let sensitive = policy.is_sensitive(&eob_with_diagnosis(code));
            assert_eq!(sensitive, code == "F20", "{code}");
        }
        assert!(!policy.is_sensitive(&json!({"resourceType": "Coverage"})));
    }

    #[test]
    fn procedures_are_checked_as_well_as_diagnoses() {
        let policy = SensitivePolicy::default();
        let psychotherapy = json!({"item": [{"productOrService": {"coding": [
            {"system": fhir::systems::CPT, "code": "90834"}]}}]});
        assert!(policy.is_sensitive(&psychotherapy));
        let detox = json!({"item": [{"productOrService": {"coding": [
            {"system": fhir::systems::HCPCS, "code": "H0010"}]}}]});
        assert!(policy.is_sensitive(&detox));
        let same_code_other_system = json!({"code": {"coding": [
            {"system": "http://snomed.info/sct", "code": "90834"}]}});
        assert!(!policy.is_sensitive(&same_code_other_system));
    }

    #[test]
    fn the_setting_is_the_default_list_or_the_plans_own_and_nothing_else() {
        assert_eq!(
            SensitivePolicy::configured(" default\n").unwrap(),
            SensitivePolicy::default()
        );
        let own = r#"{"ranges": [{"category": "genetic", "system": "cpt-hcpcs", "from": "81200", "to": "81479"}]}"#;
        assert_eq!(
            SensitivePolicy::configured(own).unwrap(),
            SensitivePolicy::from_json(own).unwrap()
        );
        // A typo is an error, never the default list in disguise.
        assert!(SensitivePolicy::configured("defualt").is_err());
        assert!(SensitivePolicy::configured("").is_err());
    }

    #[test]
    fn a_plan_configures_its_own_list() {
        let policy = SensitivePolicy::from_json(
            r#"{"ranges": [{"category": "genetic", "system": "cpt-hcpcs", "from": "81200", "to": "81479"}]}"#,
        )
        .unwrap();
        let genetic = json!({"item": [{"productOrService": {"coding": [
            {"system": fhir::systems::CPT, "code": "81220"}]}}]});
        assert!(policy.is_sensitive(&genetic));
        assert!(!policy.is_sensitive(&eob_with_diagnosis("F10.20")));
        assert!(
            SensitivePolicy::from_json(
                r#"{"ranges": [{"category": "x", "system": "icd10-cm", "from": "F19", "to": "F10"}]}"#
            )
            .is_err()
        );
    }
}
