//! The `$member-match` rule, and the candidate search that applies it with key
//! look-ups only.
//!
//! # The rule
//!
//! A request names one member of this plan when exactly one stored Patient has:
//!
//! 1. **a Coverage carrying the card's number.** One of `CoverageToMatch`'s
//!    `identifier[].value` or its `subscriberId` equals one of the stored Coverage's
//!    `identifier[].value` or its `subscriberId`. Compared after
//!    [`fhir_search::member_id::normalise`]: ASCII letters upper-cased, every
//!    character that is not a letter or digit dropped (`abc-123 45` = `ABC12345`);
//! 2. **issued by this payer.** One of the identifiers `CoverageToMatch.payor` gives
//!    (its `identifier`, or the identifiers of the contained Organization it points at)
//!    equals, normalised the same way, an identifier of the stored Coverage's payor
//!    Organization (payer id, NAIC code, NPI, TIN). A Coverage this plan records for
//!    another carrier (coordination of benefits) never matches;
//! 3. **the same birth date**, exactly: `MemberPatient.birthDate` must be a full date
//!    (`YYYY-MM-DD`) and equal the stored one;
//! 4. **the same gender**, exactly (`MemberPatient.gender` is required);
//! 5. **the same name**: some `MemberPatient.name` whose family name and first given
//!    name equal those of some stored `Patient.name`, after folding both: Unicode
//!    decomposition with the accents dropped, lower case, and everything that is not a
//!    letter or digit removed (`Núñez-López` = `NUNEZ LOPEZ` = `nunezlopez`).
//!    Nicknames, initials, transposed or misspelt names, and other given names are
//!    **not** attempted: `Bill` is not `William`.
//!
//! **Why it cannot link the wrong person.** Candidates come only from the card number,
//! which this plan issued; every other element must then agree with *the Patient that
//! Coverage belongs to*, not with any Patient. A wrong link would need another person
//! holding a card with that number from this payer *and* that person's birth date,
//! gender, family name and first given name. Family members who share a subscriber id
//! differ in at least one of these; when they do not (two records alike in every
//! compared element), the rule finds two Patients and answers "no unique match",
//! never one of them. Normalising removes only differences of writing (case,
//! accents, spaces, punctuation), never of letters or digits, so it cannot merge two
//! different names or numbers.

use std::collections::{BTreeMap, BTreeSet};

use fhir::ResourceType;
use fhir_search::member_id;
use fhir_store::{ListQuery, Partition, ResourceStore, StoreResult};
use serde_json::{Value, json};

/// Coverages read for one card number, at most: more is a data problem, and the
/// answer is then "no unique match".
const MAX_CANDIDATE_COVERAGES: usize = 200;
/// Card numbers taken from one request, at most.
const MAX_MEMBER_IDS: usize = 4;
const PAGE: usize = 50;

/// A request the rule cannot be applied to (400: says nothing about any member).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the body must be a FHIR Parameters resource")]
    NotParameters,
    #[error("the parameter {0} is required (once)")]
    Missing(&'static str),
    #[error("{0}")]
    Invalid(&'static str),
}

/// The member's demographics, folded for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demographics {
    /// `(family, first given)` pairs, folded.
    pub names: Vec<(String, String)>,
    pub birth_date: String,
    pub gender: String,
}

/// What the rule compares, from one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRequest {
    pub member: Demographics,
    /// Normalised card numbers (member and subscriber ids).
    pub member_ids: Vec<String>,
    /// Normalised identifiers of the payer that issued the card.
    pub payer_ids: Vec<String>,
}

/// The answer of the rule.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchOutcome {
    /// Exactly one member: the Patient id and the identifier to give the requester.
    Unique {
        patient_id: String,
        member_identifier: Value,
    },
    NoMatch,
    /// More than one Patient fits: treated as no match, never one of them.
    Several,
}

/// Folds a name part: accents dropped, lower case, only letters and digits kept.
pub fn fold_name(text: &str) -> String {
    fhir_search::fold(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// `(family, first given)` of every name that has both.
fn names(patient: &Value) -> Vec<(String, String)> {
    patient
        .get("name")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| {
                    let family = fold_name(n.get("family")?.as_str()?);
                    let given = fold_name(n.get("given")?.as_array()?.first()?.as_str()?);
                    (!family.is_empty() && !given.is_empty()).then_some((family, given))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Demographics {
    /// From `MemberPatient`.
    pub fn from_patient(patient: &Value) -> Result<Self, InputError> {
        let names = names(patient);
        if names.is_empty() {
            return Err(InputError::Invalid(
                "MemberPatient needs a name with a family and a given name",
            ));
        }
        let birth_date = patient
            .get("birthDate")
            .and_then(Value::as_str)
            .filter(|d| is_full_date(d))
            .ok_or(InputError::Invalid(
                "MemberPatient.birthDate must be a full date (YYYY-MM-DD)",
            ))?
            .to_owned();
        let gender = patient
            .get("gender")
            .and_then(Value::as_str)
            .filter(|g| matches!(*g, "male" | "female" | "other" | "unknown"))
            .ok_or(InputError::Invalid(
                "MemberPatient.gender must be male, female, other or unknown",
            ))?
            .to_owned();
        Ok(Demographics {
            names,
            birth_date,
            gender,
        })
    }

    /// Rules 3–5 against a stored Patient.
    pub fn same_person(&self, stored: &Value) -> bool {
        stored.get("birthDate").and_then(Value::as_str) == Some(self.birth_date.as_str())
            && stored.get("gender").and_then(Value::as_str) == Some(self.gender.as_str())
            && names(stored).iter().any(|n| self.names.contains(n))
    }
}

fn is_full_date(text: &str) -> bool {
    text.len() == 10
        && fhir_search::parse_range(text)
            .is_some_and(|r| r.end.zip(r.start).is_some_and(|(e, s)| e - s == 86_400_000))
}

/// The card numbers a Coverage carries, normalised.
fn card_numbers(coverage: &Value) -> BTreeSet<String> {
    let identifiers = coverage
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("value").and_then(Value::as_str));
    identifiers
        .chain(coverage.get("subscriberId").and_then(Value::as_str))
        .filter_map(member_id::normalise)
        .collect()
}

fn identifier_values(resource: &Value) -> impl Iterator<Item = String> + '_ {
    resource
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("value").and_then(Value::as_str))
        .filter_map(member_id::normalise)
}

impl MatchRequest {
    /// From `MemberPatient` and `CoverageToMatch`.
    pub fn new(member_patient: &Value, coverage: &Value) -> Result<Self, InputError> {
        let member = Demographics::from_patient(member_patient)?;
        let member_ids: Vec<String> = card_numbers(coverage)
            .into_iter()
            .take(MAX_MEMBER_IDS)
            .collect();
        if member_ids.is_empty() {
            return Err(InputError::Invalid(
                "CoverageToMatch needs the member or subscriber id (identifier or subscriberId)",
            ));
        }
        let mut payer_ids = BTreeSet::new();
        for payor in coverage
            .get("payor")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(value) = payor
                .get("identifier")
                .and_then(|i| i.get("value"))
                .and_then(Value::as_str)
                .and_then(member_id::normalise)
            {
                payer_ids.insert(value);
            }
            let contained = payor
                .get("reference")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|id| {
                    coverage
                        .get("contained")
                        .and_then(Value::as_array)?
                        .iter()
                        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
                });
            if let Some(org) = contained {
                payer_ids.extend(identifier_values(org));
            }
        }
        if payer_ids.is_empty() {
            return Err(InputError::Invalid(
                "CoverageToMatch.payor must identify the payer by identifier (or a contained Organization with one)",
            ));
        }
        Ok(MatchRequest {
            member,
            member_ids,
            payer_ids: payer_ids.into_iter().collect(),
        })
    }
}

/// Applies the rule: one look-up Query per card number, then Gets of the candidates'
/// payor Organizations and Patients. Never lists a whole type.
pub async fn find<S: ResourceStore + ?Sized>(
    store: &S,
    request: &MatchRequest,
) -> StoreResult<MatchOutcome> {
    let mut coverages = Vec::new();
    for id in &request.member_ids {
        let mut query = ListQuery::new(
            Partition::Lookup {
                resource_type: ResourceType::Coverage,
                param: member_id::PARAM.to_owned(),
                prefix: member_id::term(id),
            },
            PAGE,
        );
        loop {
            let page = store.list(query.clone()).await?;
            let last = page.entries.last().map(|(key, _)| key.clone());
            coverages.extend(page.entries.into_iter().map(|(_, record)| record));
            if coverages.len() > MAX_CANDIDATE_COVERAGES {
                return Ok(MatchOutcome::Several);
            }
            match (page.more, last) {
                (true, Some(after)) => query.after = Some(after),
                _ => break,
            }
        }
    }
    let mut payers: BTreeMap<String, bool> = BTreeMap::new();
    let mut members: BTreeMap<String, Value> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for record in coverages {
        if record.deleted || !seen.insert(record.id.clone()) {
            continue;
        }
        let Ok(coverage) = serde_json::from_str::<Value>(&record.body) else {
            continue;
        };
        // Rule 1 again on the body: the look-up is a hint, the body decides.
        let numbers = card_numbers(&coverage);
        if !request.member_ids.iter().any(|id| numbers.contains(id)) {
            continue;
        }
        // Rule 2.
        if !issued_by(store, &coverage, &request.payer_ids, &mut payers).await? {
            continue;
        }
        let Some(patient_id) = record.index.compartment.clone() else {
            continue;
        };
        if members.contains_key(&patient_id) {
            continue;
        }
        let Some(patient) = store.get(ResourceType::Patient, &patient_id).await? else {
            continue;
        };
        if patient.deleted {
            continue;
        }
        let Ok(patient) = serde_json::from_str::<Value>(&patient.body) else {
            continue;
        };
        // Rules 3-5.
        if request.member.same_person(&patient) {
            members.insert(patient_id, patient);
        }
    }
    let mut found = members.into_iter();
    Ok(match (found.next(), found.next()) {
        (None, _) => MatchOutcome::NoMatch,
        (Some(_), Some(_)) => MatchOutcome::Several,
        (Some((patient_id, patient)), None) => MatchOutcome::Unique {
            member_identifier: member_identifier(&patient_id, &patient),
            patient_id,
        },
    })
}

/// Whether the stored Coverage's payor carries one of `payer_ids`: its own
/// `identifier`, or the referenced Organization's (one Get per Organization, cached
/// for the request in `seen`).
async fn issued_by<S: ResourceStore + ?Sized>(
    store: &S,
    coverage: &Value,
    payer_ids: &[String],
    seen: &mut BTreeMap<String, bool>,
) -> StoreResult<bool> {
    for payor in coverage
        .get("payor")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let own = payor
            .get("identifier")
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str)
            .and_then(member_id::normalise);
        if own.is_some_and(|id| payer_ids.contains(&id)) {
            return Ok(true);
        }
        let Some(org_id) = payor
            .get("reference")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("Organization/"))
        else {
            continue;
        };
        let matches = match seen.get(org_id) {
            Some(known) => *known,
            None => {
                let known = match store.get(ResourceType::Organization, org_id).await? {
                    Some(record) if !record.deleted => serde_json::from_str::<Value>(&record.body)
                        .is_ok_and(|org| identifier_values(&org).any(|id| payer_ids.contains(&id))),
                    _ => false,
                };
                seen.insert(org_id.to_owned(), known);
                known
            }
        };
        if matches {
            return Ok(true);
        }
    }
    Ok(false)
}

/// HRex `MemberIdentifier`: the member's id at this plan, typed `UMB` (unique member
/// id). The Patient's own member number (`identifier` typed `MB`) when it has one,
/// else the Patient id under this system's id namespace.
fn member_identifier(patient_id: &str, patient: &Value) -> Value {
    let umb = json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
        "code": "UMB",
        "display": "Member Number"
    }]});
    let member_number = patient
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|i| {
            i.pointer("/type/coding")
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c.get("code") == Some(&json!("MB"))))
        });
    match member_number {
        Some(found) => {
            let mut identifier = json!({"type": umb});
            for field in ["system", "value"] {
                if let Some(v) = found.get(field) {
                    identifier[field] = v.clone();
                }
            }
            identifier
        }
        None => json!({
            "type": umb,
            "system": "urn:patient-access:patient-id",
            "value": patient_id
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(family: &str, given: &str, birth: &str, gender: &str) -> Value {
        json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
               "birthDate": birth, "gender": gender})
    }

    #[test]
    fn names_are_compared_without_case_accents_spaces_or_punctuation() {
        assert_eq!(fold_name("Núñez-López"), fold_name("NUNEZ LOPEZ"));
        assert_eq!(fold_name("O'Brien"), "obrien");
        assert_ne!(fold_name("Bill"), fold_name("William"));
        let asked =
            Demographics::from_patient(&member("NÚÑEZ LÓPEZ", "josé", "1980-02-29", "male"))
                .unwrap();
        assert!(asked.same_person(&member("Núñez-López", "José", "1980-02-29", "male")));
    }

    #[test]
    fn birth_date_gender_and_both_names_must_agree() {
        let stored = member("Smith", "Ann", "1990-01-02", "female");
        let asked = |m: Value| Demographics::from_patient(&m).unwrap().same_person(&stored);
        assert!(asked(member("smith", "ann", "1990-01-02", "female")));
        assert!(!asked(member("Smith", "Ann", "1990-01-03", "female")));
        assert!(!asked(member("Smith", "Ann", "1990-01-02", "unknown")));
        assert!(!asked(member("Smith", "Anna", "1990-01-02", "female")));
        assert!(!asked(member("Smyth", "Ann", "1990-01-02", "female")));
    }

    #[test]
    fn a_partial_birth_date_or_missing_name_is_an_input_error() {
        assert!(Demographics::from_patient(&member("Smith", "Ann", "1990-01", "female")).is_err());
        assert!(
            Demographics::from_patient(&member("Smith", "Ann", "1990-02-30", "female")).is_err()
        );
        assert!(Demographics::from_patient(&member("", "Ann", "1990-01-02", "female")).is_err());
        assert!(Demographics::from_patient(&member("Smith", "Ann", "1990-01-02", "f")).is_err());
    }

    #[test]
    fn the_card_needs_a_number_and_a_payer_identifier() {
        let patient = member("Smith", "Ann", "1990-01-02", "female");
        let card = json!({"resourceType": "Coverage", "subscriberId": "s-100",
            "payor": [{"identifier": {"value": "plan01"}}]});
        let request = MatchRequest::new(&patient, &card).unwrap();
        assert_eq!(request.member_ids, ["S100"]);
        assert_eq!(request.payer_ids, ["PLAN01"]);
        let contained = json!({"resourceType": "Coverage", "identifier": [{"value": "M1"}],
            "contained": [{"resourceType": "Organization", "id": "old", "identifier": [{"value": "PLAN01"}]}],
            "payor": [{"reference": "#old"}]});
        assert_eq!(
            MatchRequest::new(&patient, &contained).unwrap().payer_ids,
            ["PLAN01"]
        );
        let no_payer = json!({"resourceType": "Coverage", "subscriberId": "S100",
            "payor": [{"display": "Old Plan"}]});
        assert!(MatchRequest::new(&patient, &no_payer).is_err());
        let no_number =
            json!({"resourceType": "Coverage", "payor": [{"identifier": {"value": "P"}}]});
        assert!(MatchRequest::new(&patient, &no_number).is_err());
    }
}
