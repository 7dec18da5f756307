//! Bringing another plan's answer into this plan's record (this plan as the new payer).
//!
//! What the other plan sent is validated as a whole first; one bad resource, or one
//! that is not the matched member's, rejects the whole answer and nothing is stored.
//! A valid answer becomes [`Imported`] resources:
//!
//! * **Ids namespaced by the source plan** ([`namespaced_id`]): `{payer}.{their id}`,
//!   or `{payer}.h{hash}` when that would pass FHIR's 64 characters. The same answer
//!   always gives the same ids, so a re-run after a crash overwrites what the crashed
//!   run wrote instead of duplicating it. The writer refuses to overwrite anything that
//!   does not carry the same source tag, so an answer can never replace one of this
//!   plan's own resources.
//! * **References rewritten.** The other plan's Patient is the member this plan
//!   already holds: every reference to it becomes `Patient/{member}`, so the received
//!   Coverages and claims fall in the member's compartment and every compartment rule
//!   stays as it is. The other plan's Patient resource itself is not stored (a second
//!   Patient would split the member's record); its reference is kept in each
//!   Provenance. References to the other received resources get their namespaced ids;
//!   references to anything else become absolute URLs on the other plan's server.
//! * **Marked with the source**, in two ways an app can read without a second call:
//!   `meta.source` is the other plan's FHIR base URL, and `meta.tag` carries
//!   [`RECEIVED_FROM_SYSTEM`]`|{payer}` with the plan's name as display, so
//!   `_tag=` searches and badges work. A US Core **Provenance** per resource
//!   ([`provenance`]) names the plan (agent, with its payer id), the time received
//!   (`recorded`) and the original resource (`entity.what`).

use fhir::{Reference, ResourceType, is_valid_id};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The `meta.tag` system of received resources; the code is the source plan's name.
pub const RECEIVED_FROM_SYSTEM: &str =
    "https://github.com/patient-access/fhir/CodeSystem/received-from-payer";
/// US Core's Provenance profile, which every Provenance written here claims.
pub const US_CORE_PROVENANCE: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

/// The resource types taken from another plan's answer. Their Patient is read (to
/// know the member's id there) but not stored.
pub const RECEIVED_TYPES: [ResourceType; 4] = [
    ResourceType::Coverage,
    ResourceType::ExplanationOfBenefit,
    ResourceType::Organization,
    ResourceType::Practitioner,
];

/// Types an answer holds that are read but not stored: their Patient (the member is
/// ours already) and their Provenance (PDex sends one per resource; this plan writes
/// its own, naming that plan as author and transmitter and the original as the source,
/// so the chain still leads back to it).
const NOT_STORED: [ResourceType; 2] = [ResourceType::Patient, ResourceType::Provenance];

/// Resources one answer may hold, at most: five years of one member's claims are a
/// few thousand; more is a wrong answer, refused before it fills the store.
pub const MAX_RESOURCES: usize = 200_000;

/// The plan an answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name this plan registered it under (`payers add --name`): a short slug.
    pub name: String,
    /// Its FHIR base URL, without a trailing slash.
    pub base_url: String,
    /// Its payer id, as its cards show it.
    pub payer_id: String,
}

/// One resource to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub resource_type: ResourceType,
    pub id: String,
    pub body: Value,
}

/// Why an answer was refused; nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("resource {index}: {reason}")]
    Invalid { index: usize, reason: String },
    #[error("the answer holds no Patient, or more than one")]
    NoSinglePatient,
    #[error("the answer holds more than {MAX_RESOURCES} resources")]
    TooLarge,
}

/// `{payer}.{their id}`, or `{payer}.h{40 hex of SHA-256}` past 64 characters. Never
/// an id this plan's own mappings make: those hold no `.` after a payer name.
pub fn namespaced_id(source: &str, their_id: &str) -> String {
    let plain = format!("{source}.{their_id}");
    if is_valid_id(&plain) {
        return plain;
    }
    let digest = Sha256::digest(their_id.as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("{source}.h{hex}")
}

/// Whether `body` came from `source` (its tag), so that a re-import may replace it.
pub fn is_from(body: &Value, source: &str) -> bool {
    tags(body).any(|(system, code)| system == RECEIVED_FROM_SYSTEM && code == source)
}

/// Whether `body` was received from any other plan.
pub fn is_received(body: &Value) -> bool {
    tags(body).any(|(system, _)| system == RECEIVED_FROM_SYSTEM)
}

fn tags(body: &Value) -> impl Iterator<Item = (&str, &str)> {
    body.pointer("/meta/tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tag| Some((tag.get("system")?.as_str()?, tag.get("code")?.as_str()?)))
}

/// The answer's resources, ready to write: each received resource and its Provenance.
/// `resources` are what the other plan's `$everything` (or export) gave, in any order;
/// `member` is this plan's Patient id; `now` the time received. The whole answer in
/// memory: [`Checked::convert`] one at a time keeps only one resource's copies.
pub fn import(
    resources: &[Value],
    source: &Source,
    member: &str,
    now: &str,
) -> Result<Vec<Imported>, ImportError> {
    let checked = check(resources, source, member)?;
    Ok(resources
        .iter()
        .flat_map(|resource| checked.convert(resource, now))
        .collect())
}

/// An answer found valid as a whole: [`check`] passed, nothing copied yet.
pub struct Checked<'a> {
    source: &'a Source,
    member: &'a str,
    their_member: String,
}

/// Validates the whole answer without copying it: types, ids, and that every claim
/// and coverage is the matched member's.
pub fn check<'a>(
    resources: &[Value],
    source: &'a Source,
    member: &'a str,
) -> Result<Checked<'a>, ImportError> {
    if resources.len() > MAX_RESOURCES {
        return Err(ImportError::TooLarge);
    }
    let checked = Checked::for_member(source, member, their_patient(resources)?);
    for (index, resource) in resources.iter().enumerate() {
        checked
            .check_one(resource)
            .map_err(|reason| ImportError::Invalid {
                index,
                reason: reason.to_owned(),
            })?;
    }
    Ok(checked)
}

impl<'a> Checked<'a> {
    /// A converter for answers about the member the other plan knows as
    /// `their_member` (from its match), for answers read one resource at a time (a
    /// bulk export's NDJSON): each resource is checked with [`Checked::check_one`]
    /// before it is converted.
    pub fn for_member(source: &'a Source, member: &'a str, their_member: String) -> Self {
        Checked {
            source,
            member,
            their_member,
        }
    }

    /// The plan the answer came from.
    pub fn source(&self) -> &'a Source {
        self.source
    }

    /// Whether one resource may be taken: a type Payer-to-Payer exchanges, a valid id,
    /// and, for a claim or coverage, the matched member's; a Patient must be the
    /// matched member. The reason when not.
    pub fn check_one(&self, resource: &Value) -> Result<(), &'static str> {
        let (resource_type, id) = kind_and_id(resource)?;
        if resource_type == ResourceType::Patient && id != self.their_member {
            return Err("not the matched member's");
        }
        if NOT_STORED.contains(&resource_type) {
            return Ok(());
        }
        if !RECEIVED_TYPES.contains(&resource_type) {
            return Err("not a type Payer-to-Payer exchanges");
        }
        if resource_type.is_member_owned() && !self.names_member(resource_type, resource) {
            return Err("not the matched member's");
        }
        Ok(())
    }

    /// One checked resource as its two writes (itself, then its Provenance); none for
    /// the other plan's Patient.
    pub fn convert(&self, resource: &Value, now: &str) -> Vec<Imported> {
        let Ok((resource_type, their_id)) = kind_and_id(resource) else {
            return Vec::new();
        };
        if NOT_STORED.contains(&resource_type) {
            return Vec::new();
        }
        let source = self.source;
        let mut body = resource.clone();
        rewrite_references(&mut body, source, &self.their_member, self.member);
        let id = namespaced_id(&source.name, their_id);
        mark(&mut body, &id, source);
        let original = format!("{}/{resource_type}/{their_id}", source.base_url);
        let target = Reference::new(resource_type, id.clone());
        let provenance_id =
            namespaced_id(&source.name, &format!("prov-{resource_type}-{their_id}"));
        let mut provenance = provenance(source, &target, self.member, &original, now);
        mark(&mut provenance, &provenance_id, source);
        vec![
            Imported {
                resource_type,
                id,
                body,
            },
            Imported {
                resource_type: ResourceType::Provenance,
                id: provenance_id,
                body: provenance,
            },
        ]
    }

    /// Whether a member-owned resource names the member where its compartment comes
    /// from (as the reference will read once rewritten).
    fn names_member(&self, resource_type: ResourceType, resource: &Value) -> bool {
        let field = match resource_type {
            ResourceType::Coverage => "beneficiary",
            _ => "patient",
        };
        resource
            .get(field)
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
            .is_some_and(|reference| {
                rewritten(reference, self.source, &self.their_member, self.member)
                    == format!("Patient/{}", self.member)
            })
    }
}

/// The other plan's id of the member: the answer's one Patient.
fn their_patient(resources: &[Value]) -> Result<String, ImportError> {
    let mut patients = resources
        .iter()
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        .filter_map(|r| r.get("id").and_then(Value::as_str));
    match (patients.next(), patients.next()) {
        (Some(id), None) if is_valid_id(id) => Ok(id.to_owned()),
        _ => Err(ImportError::NoSinglePatient),
    }
}

fn kind_and_id(resource: &Value) -> Result<(ResourceType, &str), &'static str> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or("not a FHIR resource (no resourceType)")?
        .parse::<ResourceType>()
        .map_err(|_| "not a type Payer-to-Payer exchanges")?;
    let id = resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_valid_id(id))
        .ok_or("no valid id")?;
    Ok((resource_type, id))
}

/// Rewrites every `reference` in `value` (see the module docs).
fn rewrite_references(value: &mut Value, source: &Source, their_member: &str, member: &str) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("reference") {
                *reference = rewritten(reference, source, their_member, member);
            }
            for (key, inner) in map.iter_mut() {
                if key != "reference" {
                    rewrite_references(inner, source, their_member, member);
                }
            }
        }
        Value::Array(items) => {
            for inner in items {
                rewrite_references(inner, source, their_member, member);
            }
        }
        _ => {}
    }
}

fn rewritten(reference: &str, source: &Source, their_member: &str, member: &str) -> String {
    // Contained (`#x`) and foreign servers' references stay as they are.
    let local = reference
        .strip_prefix(&source.base_url)
        .map(|rest| rest.trim_start_matches('/'))
        .unwrap_or(reference);
    if reference.starts_with('#') || local.contains("://") {
        return reference.to_owned();
    }
    match Reference::parse(local) {
        Some(r) if r.resource_type == ResourceType::Patient && r.id == their_member => {
            format!("Patient/{member}")
        }
        Some(r) if RECEIVED_TYPES.contains(&r.resource_type) => {
            format!("{}/{}", r.resource_type, namespaced_id(&source.name, &r.id))
        }
        _ => format!("{}/{local}", source.base_url),
    }
}

/// Sets the namespaced id and the source marks.
fn mark(body: &mut Value, id: &str, source: &Source) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    object.insert("id".into(), json!(id));
    let meta = object
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        // This plan stores its own versions; the other plan's would mislead.
        meta.remove("versionId");
        meta.remove("lastUpdated");
        meta.insert("source".into(), json!(source.base_url));
        let tag = json!({"system": RECEIVED_FROM_SYSTEM, "code": source.name,
                         "display": format!("Received from {}", source.name)});
        match meta.get_mut("tag").and_then(Value::as_array_mut) {
            Some(existing) => {
                existing.retain(|t| {
                    t.get("system").and_then(Value::as_str) != Some(RECEIVED_FROM_SYSTEM)
                });
                existing.push(tag);
            }
            None => {
                meta.insert("tag".into(), json!([tag]));
            }
        }
    }
}

/// US Core Provenance for one received resource: target the resource and the member
/// (which puts it in the member's compartment), the other plan as author and
/// transmitter, the original as the source entity.
pub fn provenance(
    source: &Source,
    target: &Reference,
    member: &str,
    original: &str,
    recorded: &str,
) -> Value {
    let plan = json!({"identifier": {"system": "http://hl7.org/fhir/sid/payer-id", "value": source.payer_id},
                      "display": source.name});
    let agent = |code: &str| json!({"type": {"coding": [{"system": PARTICIPANT_TYPE, "code": code}]}, "who": plan});
    json!({
        "resourceType": "Provenance",
        "meta": {"profile": [US_CORE_PROVENANCE]},
        "target": [{"reference": target.relative()}, {"reference": format!("Patient/{member}")}],
        "recorded": recorded,
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": "CREATE"}]},
        "agent": [agent("author"), agent("transmitter")],
        "entity": [{"role": "source", "what": {"reference": original}}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old_plan() -> Source {
        Source {
            name: "oldplan".into(),
            base_url: "https://fhir.old.example/r4".into(),
            payer_id: "OLD01".into(),
        }
    }

    fn answer() -> Vec<Value> {
        vec![
            json!({"resourceType": "Patient", "id": "p9", "name": [{"family": "Núñez"}]}),
            json!({"resourceType": "Coverage", "id": "c1", "beneficiary": {"reference": "Patient/p9"},
                   "payor": [{"reference": "Organization/o1"}]}),
            json!({"resourceType": "ExplanationOfBenefit", "id": "e1",
                   "meta": {"versionId": "7", "profile": ["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician"]},
                   "patient": {"reference": "https://fhir.old.example/r4/Patient/p9"},
                   "insurance": [{"coverage": {"reference": "Coverage/c1"}}],
                   "provider": {"reference": "Practitioner/pr1"},
                   "facility": {"reference": "Location/l1"}}),
            json!({"resourceType": "Organization", "id": "o1", "name": "Old Plan"}),
            json!({"resourceType": "Practitioner", "id": "pr1"}),
        ]
    }

    fn imported(resource_type: ResourceType, id: &str) -> Value {
        import(&answer(), &old_plan(), "m1", "2027-01-08T10:00:00Z")
            .unwrap()
            .into_iter()
            .find(|i| i.resource_type == resource_type && i.id == id)
            .map(|i| i.body)
            .unwrap_or_else(|| panic!("{resource_type}/{id} not imported"))
    }

    #[test]
    fn received_claims_land_in_the_members_compartment_under_namespaced_ids() {
        let eob = imported(ResourceType::ExplanationOfBenefit, "oldplan.e1");
        assert_eq!(eob["patient"]["reference"], "Patient/m1");
        assert_eq!(
            eob["insurance"][0]["coverage"]["reference"],
            "Coverage/oldplan.c1"
        );
        assert_eq!(eob["provider"]["reference"], "Practitioner/oldplan.pr1");
        assert_eq!(
            eob["facility"]["reference"], "https://fhir.old.example/r4/Location/l1",
            "a type not exchanged points back at the source"
        );
        let coverage = imported(ResourceType::Coverage, "oldplan.c1");
        assert_eq!(coverage["beneficiary"]["reference"], "Patient/m1");
        assert_eq!(coverage["payor"][0]["reference"], "Organization/oldplan.o1");
    }

    #[test]
    fn every_received_resource_carries_its_source_and_a_provenance() {
        let eob = imported(ResourceType::ExplanationOfBenefit, "oldplan.e1");
        assert_eq!(eob["meta"]["source"], "https://fhir.old.example/r4");
        assert!(is_from(&eob, "oldplan"));
        assert!(eob["meta"].get("versionId").is_none());
        assert!(eob["meta"]["profile"][0].as_str().unwrap().contains("C4BB"));

        let all = import(&answer(), &old_plan(), "m1", "2027-01-08T10:00:00Z").unwrap();
        let provenances: Vec<_> = all
            .iter()
            .filter(|i| i.resource_type == ResourceType::Provenance)
            .collect();
        assert_eq!(
            provenances.len(),
            4,
            "one per stored resource, none for their Patient"
        );
        let of_eob = provenances
            .iter()
            .find(|p| p.body["target"][0]["reference"] == "ExplanationOfBenefit/oldplan.e1")
            .unwrap();
        assert_eq!(of_eob.body["target"][1]["reference"], "Patient/m1");
        assert_eq!(of_eob.body["recorded"], "2027-01-08T10:00:00Z");
        assert_eq!(
            of_eob.body["agent"][0]["who"]["identifier"]["value"],
            "OLD01"
        );
        assert_eq!(
            of_eob.body["entity"][0]["what"]["reference"],
            "https://fhir.old.example/r4/ExplanationOfBenefit/e1"
        );
        assert!(is_from(&of_eob.body, "oldplan"));
    }

    #[test]
    fn the_same_answer_always_gives_the_same_ids() {
        let once = import(&answer(), &old_plan(), "m1", "2027-01-08T10:00:00Z").unwrap();
        let again = import(&answer(), &old_plan(), "m1", "2027-01-09T10:00:00Z").unwrap();
        let ids = |v: &[Imported]| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&once), ids(&again));
    }

    #[test]
    fn the_other_plans_provenance_is_read_but_this_plan_writes_its_own() {
        let mut answer = answer();
        answer.push(json!({"resourceType": "Provenance", "id": "pv1",
                           "target": [{"reference": "ExplanationOfBenefit/e1"}]}));
        let all = import(&answer, &old_plan(), "m1", "2027-01-08T10:00:00Z").unwrap();
        assert!(!all.iter().any(|i| i.id == "oldplan.pv1"));
        assert_eq!(
            all.iter()
                .filter(|i| i.resource_type == ResourceType::Provenance)
                .count(),
            4
        );
    }

    #[test]
    fn long_ids_are_hashed_within_fhirs_64_characters() {
        let id = namespaced_id("oldplan", &"x".repeat(64));
        assert!(is_valid_id(&id), "{id}");
        assert_ne!(id, namespaced_id("oldplan", &"y".repeat(64)));
    }

    #[test]
    fn another_persons_claim_rejects_the_whole_answer() {
        let mut answer = answer();
        answer.push(json!({"resourceType": "ExplanationOfBenefit", "id": "e2",
                           "patient": {"reference": "Patient/someone-else"}}));
        assert_eq!(
            import(&answer, &old_plan(), "m1", "2027-01-08T10:00:00Z"),
            Err(ImportError::Invalid {
                index: 5,
                reason: "not the matched member's".into()
            })
        );
    }

    #[test]
    fn malformed_or_foreign_resources_reject_the_whole_answer() {
        for bad in [
            json!("not an object"),
            json!({"resourceType": "Observation", "id": "x"}),
            json!({"resourceType": "Coverage", "id": "bad id/1", "beneficiary": {"reference": "Patient/p9"}}),
            json!({"resourceType": "Consent", "id": "c", "patient": {"reference": "Patient/p9"}}),
        ] {
            let mut answer = answer();
            answer.push(bad.clone());
            assert!(
                matches!(
                    import(&answer, &old_plan(), "m1", "now"),
                    Err(ImportError::Invalid { index: 5, .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            import(&answer()[1..], &old_plan(), "m1", "now"),
            Err(ImportError::NoSinglePatient)
        );
    }
}
