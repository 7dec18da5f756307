//! Building a [`SearchIndex`] from a resource body, once, at write time.
//!
//! Extraction is hand-written per type rather than a FHIRPath engine: the set of
//! parameters is small and fixed, and explicit code is easier to audit — in
//! particular the compartment rule, which decides who may see a resource.

use fhir::{Reference, ResourceType, is_valid_id};
use serde_json::Value;

use crate::date::{DateRange, parse_range};
use crate::index::{DateValue, SearchIndex, StringValue, TokenValue};
use crate::params::include_def;
use crate::text::fold;

/// The `Patient.gender` code system, recorded so `system|code` searches work.
const GENDER_SYSTEM: &str = "http://hl7.org/fhir/administrative-gender";

/// The `Consent.status` code system.
const CONSENT_STATE_SYSTEM: &str = "http://hl7.org/fhir/consent-state-codes";

/// Extracts every value search needs from `resource` (see the crate docs for the
/// per-type rules). Unparseable or foreign values are skipped, never an error: a
/// stored resource must always be indexable.
pub fn index_resource(resource_type: ResourceType, resource: &Value) -> SearchIndex {
    let mut ix = Indexer {
        resource_type,
        resource,
        index: SearchIndex::default(),
    };
    match resource_type {
        ResourceType::ExplanationOfBenefit => ix.explanation_of_benefit(),
        ResourceType::Coverage => ix.coverage(),
        ResourceType::Patient => ix.patient(),
        ResourceType::Practitioner => ix.practitioner(),
        ResourceType::Organization => ix.organization(),
        ResourceType::RelatedPerson => ix.related_person(),
        ResourceType::Consent => ix.consent(),
        ResourceType::Provenance => ix.provenance(),
        // Directory types are indexed by the `plan-net` crate, never through here.
        ResourceType::Endpoint
        | ResourceType::HealthcareService
        | ResourceType::InsurancePlan
        | ResourceType::Location
        | ResourceType::OrganizationAffiliation
        | ResourceType::PractitionerRole => {}
    }
    ix.index
}

struct Indexer<'a> {
    resource_type: ResourceType,
    resource: &'a Value,
    index: SearchIndex,
}

impl Indexer<'_> {
    fn explanation_of_benefit(&mut self) {
        self.compartment_from(&["patient"]);
        self.reference("patient", &["patient"], &[]);
        self.reference("provider", &["provider"], &[]);
        self.reference("care-team", &["careTeam", "provider"], &[]);
        self.reference("coverage", &["insurance", "coverage"], &[]);
        self.reference("insurer", &["insurer"], &[]);
        self.reference("payee", &["payee", "party"], &[]);
        self.codings("type", &["type"]);
        self.identifiers("identifier");
        self.period("service-date", &["billablePeriod"]);
        self.date("service-date", &["item", "servicedDate"]);
        self.period("service-date", &["item", "servicedPeriod"]);
        self.date("service-start-date", &["billablePeriod", "start"]);
        self.date("service-start-date", &["item", "servicedDate"]);
        self.date("service-start-date", &["item", "servicedPeriod", "start"]);
        self.date("billable-period-start", &["billablePeriod", "start"]);
        if let Some(code) = self.resource.get("use").and_then(Value::as_str) {
            self.token("use", Some(fhir::systems::CLAIM_USE), code);
        }
    }

    fn coverage(&mut self) {
        use ResourceType::{Organization, Patient, RelatedPerson};
        self.compartment_from(&["beneficiary"]);
        self.reference("patient", &["beneficiary"], &[]);
        self.reference("beneficiary", &["beneficiary"], &[Patient]);
        self.reference("payor", &["payor"], &[]);
        self.reference("subscriber", &["subscriber"], &[Patient, RelatedPerson]);
        self.reference(
            "policy-holder",
            &["policyHolder"],
            &[Patient, RelatedPerson, Organization],
        );
        // The member-id look-up (`$member-match`): the card's numbers.
        let ids = values_at(self.resource, &["identifier"])
            .into_iter()
            .filter_map(|i| i.get("value").and_then(Value::as_str))
            .chain(strings_at(self.resource, &["subscriberId"]))
            .filter_map(crate::member_id::normalise)
            .collect::<Vec<_>>();
        for id in ids {
            self.lookup(crate::member_id::PARAM, crate::member_id::term(&id));
        }
    }

    fn patient(&mut self) {
        self.index.compartment = self
            .resource
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| is_valid_id(id))
            .map(str::to_owned);
        if let Some(id) = self.index.compartment.clone() {
            let shard = crate::roster::param(crate::roster::shard(&id));
            self.lookup(&shard, id);
        }
        self.identifiers("identifier");
        self.human_names(false);
        self.date("birthdate", &["birthDate"]);
        if let Some(code) = self.resource.get("gender").and_then(Value::as_str) {
            self.token("gender", Some(GENDER_SYSTEM), code);
        }
    }

    fn practitioner(&mut self) {
        self.identifiers("identifier");
        self.human_names(true);
    }

    fn organization(&mut self) {
        for path in [&["name"][..], &["alias"][..]] {
            for name in strings_at(self.resource, path) {
                self.string("name", name, true);
            }
        }
        for address in values_at(self.resource, &["address"]) {
            for field in [
                "text",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ] {
                for part in strings_at(address, &[field]) {
                    self.string("address", part, true);
                }
            }
        }
    }

    fn related_person(&mut self) {
        self.compartment_from(&["patient"]);
        self.reference("patient", &["patient"], &[]);
        self.human_names(false);
    }

    /// A member's grant to an app: in the compartment of `Consent.patient`, so a member
    /// reads only their own consents.
    fn consent(&mut self) {
        self.compartment_from(&["patient"]);
        self.reference("patient", &["patient"], &[ResourceType::Patient]);
        if let Some(status) = self.resource.get("status").and_then(Value::as_str) {
            self.token("status", Some(CONSENT_STATE_SYSTEM), status);
        }
    }

    /// Where a received resource came from: in the compartment of the member its
    /// `target` names (the importer always adds the member's `Patient`).
    fn provenance(&mut self) {
        self.compartment_from(&["target"]);
        self.reference("patient", &["target"], &[]);
        self.reference("target", &["target"], &[]);
        self.date("when", &["recorded"]);
    }

    /// The compartment is the id of the `Patient` the given element refers to; a
    /// reference to anything else (or nothing) leaves the resource in no compartment.
    fn compartment_from(&mut self, path: &[&str]) {
        self.index.compartment = values_at(self.resource, path)
            .into_iter()
            .filter_map(literal_reference)
            .find(|r| r.resource_type == ResourceType::Patient)
            .map(|r| r.id);
    }

    /// Records references under `param`, keeping only allowed target types: the
    /// include's targets, or `targets` for reference params that are not includes.
    fn reference(&mut self, param: &str, path: &[&str], targets: &[ResourceType]) {
        let allowed = include_def(self.resource_type, param).map_or(targets, |d| d.targets);
        for reference in values_at(self.resource, path)
            .into_iter()
            .filter_map(literal_reference)
        {
            let entry = (param.to_owned(), reference);
            if allowed.contains(&entry.1.resource_type) && !self.index.references.contains(&entry) {
                self.index.references.push(entry);
            }
        }
    }

    fn codings(&mut self, param: &str, path: &[&str]) {
        for concept in values_at(self.resource, path) {
            for coding in values_at(concept, &["coding"]) {
                if let Some(code) = coding.get("code").and_then(Value::as_str) {
                    let system = coding.get("system").and_then(Value::as_str);
                    self.token(param, system, code);
                }
            }
        }
    }

    /// Identifiers are tokens on `value`; directory types also get a look-up term
    /// holding the value exactly as given.
    fn identifiers(&mut self, param: &str) {
        for identifier in values_at(self.resource, &["identifier"]) {
            if let Some(value) = identifier.get("value").and_then(Value::as_str) {
                let system = identifier.get("system").and_then(Value::as_str);
                self.token(param, system, value);
                if !self.resource_type.is_member_owned() {
                    self.lookup(param, value.to_owned());
                }
            }
        }
    }

    fn token(&mut self, param: &str, system: Option<&str>, code: &str) {
        let entry = TokenValue {
            param: param.to_owned(),
            system: system.map(str::to_owned),
            code: code.to_owned(),
        };
        if !code.is_empty() && !self.index.tokens.contains(&entry) {
            self.index.tokens.push(entry);
        }
    }

    /// Indexes every `HumanName` part: `family` and `given` under their own keys,
    /// `text`, `prefix` and `suffix` under `name` (see `params::string_keys`).
    /// Directory types (`lookup`) also get one look-up term per part under `name`.
    fn human_names(&mut self, lookup: bool) {
        for name in values_at(self.resource, &["name"]) {
            for (field, key) in [
                ("text", "name"),
                ("family", "family"),
                ("given", "given"),
                ("prefix", "name"),
                ("suffix", "name"),
            ] {
                for part in strings_at(name, &[field]) {
                    self.string(key, part, false);
                    if lookup {
                        self.lookup("name", fold(part));
                    }
                }
            }
        }
    }

    fn string(&mut self, param: &str, value: &str, lookup: bool) {
        if value.trim().is_empty() {
            return;
        }
        let entry = StringValue::new(param, value);
        if lookup {
            self.lookup(param, entry.folded().to_owned());
        }
        if !self.index.strings.contains(&entry) {
            self.index.strings.push(entry);
        }
    }

    fn lookup(&mut self, param: &str, term: String) {
        let entry = (param.to_owned(), term);
        if !entry.1.is_empty() && !self.index.lookup_terms.contains(&entry) {
            self.index.lookup_terms.push(entry);
        }
    }

    /// A `date`/`dateTime` element: the range of its own precision.
    fn date(&mut self, param: &str, path: &[&str]) {
        for text in strings_at(self.resource, path) {
            if let Some(range) = parse_range(text) {
                self.push_date(param, range);
            }
        }
    }

    /// A `Period`: from the start of `start` to the end of `end`'s precision; a
    /// missing side is open. A Period with neither, or unparseable sides, is skipped.
    fn period(&mut self, param: &str, path: &[&str]) {
        for period in values_at(self.resource, path) {
            let side = |key: &str| period.get(key).and_then(Value::as_str).map(parse_range);
            let (start, end) = match (side("start"), side("end")) {
                (None, None) | (Some(None), _) | (_, Some(None)) => continue,
                (start, end) => (
                    start.flatten().and_then(|r| r.start),
                    end.flatten().and_then(|r| r.end),
                ),
            };
            self.push_date(param, DateRange::new(start, end));
        }
    }

    fn push_date(&mut self, param: &str, range: DateRange) {
        let entry = DateValue {
            param: param.to_owned(),
            start: range.start,
            end: range.end,
        };
        if range.is_valid() && !self.index.dates.contains(&entry) {
            self.index.dates.push(entry);
        }
    }
}

/// A literal reference we can resolve; logical-only and contained ones are skipped.
fn literal_reference(value: &Value) -> Option<Reference> {
    value
        .get("reference")
        .and_then(Value::as_str)
        .and_then(Reference::parse)
}

/// Every value at `path`, flattening arrays at each step (FHIRPath-style).
fn values_at<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a Value> {
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

fn strings_at<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a str> {
    values_at(value, path)
        .into_iter()
        .filter_map(Value::as_str)
        .collect()
}
