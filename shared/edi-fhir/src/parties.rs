//! Patient, Coverage, Organization and Practitioner from X12 name loops
//! (NM1 + N3/N4 + DMG + REF), with the ids of [`crate::ids`].

use fhir::ResourceType;
use serde_json::{Value, json};
use x12::{Loop, Segment};

use crate::MappingConfig;
use crate::changes::Changes;
use crate::ids::{self, MemberKey};
use crate::json::{address, concept, human_name, meta, object, opt, typed_identifier};
use crate::model::{self, Concept, Coverage, CoverageClass, Extension, Meta, Patient};
use crate::read::Errors;
use fhir::systems::{
    ACT_CODE, C4BB_IDENTIFIER_TYPE, COVERAGE_CLASS, COVERAGE_KIND_EXT, NPI, NUCC_TAXONOMY,
    ORGANIZATION_TYPE, PLAN_PAYER_ID, SUBSCRIBER_RELATIONSHIP, TAX_ID, V2_0203,
};

/// A person or organisation named by an NM1 and the N3/N4/DMG after it.
#[derive(Debug, Clone, Default)]
pub struct Party<'a> {
    /// NM102: `1` person, `2` organisation.
    pub entity_type: Option<&'a str>,
    pub family: Option<&'a str>,
    pub given: Option<&'a str>,
    pub middle: Option<&'a str>,
    /// NM108.
    pub id_qualifier: Option<&'a str>,
    /// NM109.
    pub id: Option<&'a str>,
    pub lines: Vec<&'a str>,
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
    pub zip: Option<&'a str>,
    /// DMG02 as ISO, when a valid D8.
    pub birth_date: Option<String>,
    /// DMG03.
    pub gender: Option<&'a str>,
}

impl<'a> Party<'a> {
    /// Reads the NM1 and the N3/N4/DMG that follow it in the same loop.
    pub fn from_loop(l: &Loop<'_, 'a>) -> Party<'a> {
        let mut p = l.trigger().map(Party::from_nm1).unwrap_or_default();
        for seg in l.segments() {
            match seg.id() {
                "N3" => p
                    .lines
                    .extend(seg.element(1).into_iter().chain(seg.element(2))),
                "N4" => {
                    p.city = seg.element(1);
                    p.state = seg.element(2);
                    p.zip = seg.element(3);
                }
                "DMG" if seg.element(1) == Some("D8") => {
                    p.birth_date = seg.date(2).ok().flatten().map(crate::read::iso);
                    p.gender = seg.element(3);
                }
                _ => {}
            }
        }
        p
    }

    pub fn from_nm1(nm1: &Segment<'a>) -> Party<'a> {
        Party {
            entity_type: nm1.element(2),
            family: nm1.element(3),
            given: nm1.element(4),
            middle: nm1.element(5),
            id_qualifier: nm1.element(8),
            id: nm1.element(9),
            ..Party::default()
        }
    }

    /// NM109 when NM108 is `XX`.
    pub fn npi(&self) -> Option<&'a str> {
        self.id.filter(|_| self.id_qualifier == Some("XX"))
    }

    /// NM109 unless it is an SSN (`34`), which must never be exposed.
    pub fn member_id(&self) -> Option<&'a str> {
        self.id.filter(|_| self.id_qualifier != Some("34"))
    }

    pub fn is_person(&self) -> bool {
        self.entity_type != Some("2")
    }

    pub fn display(&self) -> String {
        match (self.given, self.family) {
            (Some(g), Some(f)) => format!("{g} {f}"),
            (None, Some(f)) => f.to_owned(),
            (Some(g), None) => g.to_owned(),
            (None, None) => String::new(),
        }
    }

    /// The address as a `Value` (directory resources).
    fn address(&self) -> Value {
        if self.lines.is_empty() && self.city.is_none() {
            return Value::Null;
        }
        Value::Array(vec![address(&self.lines, self.city, self.state, self.zip)])
    }

    /// The address, typed (Patient).
    fn addresses(&self) -> Vec<model::Address<'a>> {
        if self.lines.is_empty() && self.city.is_none() {
            return Vec::new();
        }
        vec![model::Address {
            line: self.lines.clone(),
            city: self.city,
            state: self.state,
            postal_code: self.zip,
            country: "US",
        }]
    }
}

fn fhir_gender(code: Option<&str>) -> Option<&'static str> {
    match code {
        Some("F") => Some("female"),
        Some("M") => Some("male"),
        Some("U") => Some("unknown"),
        _ => None,
    }
}

fn npi_identifier(npi: &str) -> Value {
    typed_identifier(V2_0203, "NPI", "National provider identifier", NPI, npi)
}

fn tax_identifier(tin: &str) -> Value {
    typed_identifier(V2_0203, "TAX", "Tax ID number", TAX_ID, tin)
}

/// A C4BB-Patient. `member_id` is the id on the member's card (the
/// subscriber's for dependents without their own).
pub fn patient<'a>(id: &'a str, member_id: &'a str, p: &'a Party<'a>) -> Patient<'a> {
    Patient {
        resource_type: "Patient",
        id,
        meta: Meta("C4BB-Patient"),
        identifier: [model::member_identifier(member_id)],
        active: true,
        telecom: Vec::new(),
        name: [model::human_name(p.family, p.given, p.middle)],
        gender: fhir_gender(p.gender),
        birth_date: p.birth_date.as_deref(),
        deceased_date_time: None,
        address: p.addresses(),
    }
}

/// X12 individual relationship code (SBR02, PAT01, INS02) → FHIR
/// subscriber-relationship.
pub fn relationship(code: Option<&str>) -> Concept<'static> {
    let (code, display) = match code {
        Some("18") => ("self", "Self"),
        Some("01") => ("spouse", "Spouse"),
        Some("19") => ("child", "Child"),
        Some("53") => ("common", "Common Law Spouse"),
        _ => ("other", "Other"),
    };
    model::concept(SUBSCRIBER_RELATIONSHIP, code, display)
}

/// What a Coverage is built from.
pub struct CoverageFacts<'a> {
    pub id: &'a str,
    pub subscriber_id: &'a str,
    pub subscriber_patient: &'a str,
    pub beneficiary: &'a str,
    pub relationship: Option<&'a str>,
    pub group: Option<(&'a str, Option<&'a str>)>,
    pub plan: Option<(&'a str, Option<&'a str>)>,
    pub period: Option<model::Period>,
    /// `None` from claims: only enrolment decides status.
    pub status: Option<&'a str>,
    /// The employer (834 N1*P5), when known.
    pub policy_holder: Option<&'a str>,
    /// The plan's Organization id ([`ids::payer_org`]).
    pub payer_org: &'a str,
}

/// A C4BB-Coverage with the plan as payor.
pub fn coverage<'a>(f: CoverageFacts<'a>, config: &'a MappingConfig) -> Coverage<'a> {
    let class = |code: &'static str,
                 display: &'static str,
                 (value, name): (&'a str, Option<&'a str>)| CoverageClass {
        type_: model::concept(COVERAGE_CLASS, code, display),
        value,
        name,
    };
    let classes: Vec<CoverageClass<'a>> = f
        .group
        .map(|g| class("group", "Group", g))
        .into_iter()
        .chain(f.plan.map(|p| class("plan", "Plan", p)))
        .collect();
    Coverage {
        resource_type: "Coverage",
        id: f.id,
        meta: Meta("C4BB-Coverage"),
        extension: [Extension {
            url: COVERAGE_KIND_EXT,
            value_code: "insurance",
        }],
        identifier: [model::member_identifier(f.subscriber_id)],
        status: f.status,
        type_: model::concept_text(
            ACT_CODE,
            "HIP",
            "health insurance plan policy",
            "Health insurance plan",
        ),
        policy_holder: f
            .policy_holder
            .map(|s| model::plain_reference(ResourceType::Organization, s)),
        subscriber: model::plain_reference(ResourceType::Patient, f.subscriber_patient),
        subscriber_id: f.subscriber_id,
        beneficiary: model::plain_reference(ResourceType::Patient, f.beneficiary),
        relationship: relationship(f.relationship),
        period: f.period,
        payor: [model::reference(
            ResourceType::Organization,
            f.payer_org,
            Some(config.payer_name.as_str()),
        )],
        class: classes,
    }
}

/// The plan's own Organization.
pub fn payer_org(config: &MappingConfig) -> (String, Value) {
    let id = ids::payer_org(&config.payer_id);
    let value = object([
        ("resourceType", Value::from("Organization")),
        ("id", Value::from(id.as_str())),
        ("meta", meta("C4BB-Organization")),
        (
            "identifier",
            json!([typed_identifier(
                C4BB_IDENTIFIER_TYPE,
                "payerid",
                "Payer ID",
                PLAN_PAYER_ID,
                &config.payer_id
            )]),
        ),
        ("active", Value::from(true)),
        ("type", json!([concept(ORGANIZATION_TYPE, "pay", "Payer")])),
        ("name", Value::from(config.payer_name.as_str())),
    ]);
    (id, value)
}

/// A provider Organization (billing provider, service facility, payee).
pub fn provider_org(p: &Party<'_>, tin: Option<&str>) -> (String, Value) {
    let name = p.family.unwrap_or("");
    let id = ids::provider_org(p.npi(), tin, name);
    let identifiers: Vec<Value> = p
        .npi()
        .map(npi_identifier)
        .into_iter()
        .chain(tin.map(tax_identifier))
        .collect();
    let value = object([
        ("resourceType", Value::from("Organization")),
        ("id", Value::from(id.as_str())),
        ("meta", meta("C4BB-Organization")),
        ("identifier", Value::Array(identifiers)),
        ("active", Value::from(true)),
        (
            "type",
            json!([concept(ORGANIZATION_TYPE, "prov", "Healthcare Provider")]),
        ),
        ("name", opt(p.family)),
        ("address", p.address()),
    ]);
    (id, value)
}

/// The Practitioner id of a party, without building the resource.
pub fn practitioner_id(p: &Party<'_>) -> String {
    ids::practitioner(p.npi(), p.family.unwrap_or(""), p.given.unwrap_or(""))
}

/// The Organization id of a party, without building the resource.
pub fn provider_org_id(p: &Party<'_>, tin: Option<&str>) -> String {
    ids::provider_org(p.npi(), tin, p.family.unwrap_or(""))
}

/// A C4BB-Practitioner; `taxonomy` from PRV when known.
pub fn practitioner(p: &Party<'_>, taxonomy: Option<&str>) -> (String, Value) {
    let id = ids::practitioner(p.npi(), p.family.unwrap_or(""), p.given.unwrap_or(""));
    let qualification: Vec<Value> = taxonomy
        .map(|t| json!({ "code": concept(NUCC_TAXONOMY, t, "") }))
        .into_iter()
        .collect();
    let value = object([
        ("resourceType", Value::from("Practitioner")),
        ("id", Value::from(id.as_str())),
        ("meta", meta("C4BB-Practitioner")),
        (
            "identifier",
            Value::Array(p.npi().map(npi_identifier).into_iter().collect()),
        ),
        ("active", Value::from(true)),
        ("name", json!([human_name(p.family, p.given, p.middle)])),
        ("qualification", Value::Array(qualification)),
    ]);
    (id, value)
}

/// The member key of a subscriber or dependent.
pub fn member_key<'a>(subscriber_id: &'a str, dependent: Option<&Party<'a>>) -> MemberKey<'a> {
    match dependent {
        None => MemberKey::Subscriber {
            member_id: subscriber_id,
        },
        Some(d) => MemberKey::Dependent {
            subscriber_id,
            given: d.given.unwrap_or(""),
        },
    }
}

/// The subscriber named by a 2010BA (837) or 2010C (278) loop, with the
/// member id on their card; `None`, with the error, when NM109 is missing
/// (or is an SSN, which is never used as an id).
pub fn subscriber<'a>(l: &Loop<'_, 'a>, errors: &mut Errors) -> Option<(Party<'a>, &'a str)> {
    let party = Party::from_loop(l);
    match party.member_id() {
        Some(id) => Some((party, id)),
        None => {
            if let Some(nm1) = l.trigger() {
                errors.push(nm1.error_at(
                    x12::ErrorKind::MissingElement,
                    x12::ElementPos::at(9),
                    "the subscriber's member id (NM109, NM108 = MI) is required",
                ));
            }
            None
        }
    }
}

/// Who a claim or prior authorization is for, as the X12 names them.
pub struct MemberFacts<'a, 'p> {
    pub subscriber_id: &'a str,
    pub subscriber: &'p Party<'a>,
    /// The patient when not the subscriber.
    pub dependent: Option<&'p Party<'a>>,
    /// SBR02 / PAT01 / INS02.
    pub relationship: Option<&'a str>,
    /// SBR03 / SBR04.
    pub group: Option<(&'a str, Option<&'a str>)>,
    /// The coverage line: `medical` or `dental`.
    pub line: &'static str,
}

/// Emits the subscriber's Patient, the dependent's when the patient is one,
/// and the member's Coverage of that line, with the ids every X12 kind gives
/// them; returns the patient's and the Coverage's ids.
pub fn emit_member(
    f: MemberFacts<'_, '_>,
    config: &MappingConfig,
    payer_org: &str,
    out: &mut Changes<'_>,
) -> (String, String) {
    let subscriber_patient = ids::patient(&config.payer_id, &member_key(f.subscriber_id, None));
    out.merge_typed(
        ResourceType::Patient,
        subscriber_patient.clone(),
        &patient(&subscriber_patient, f.subscriber_id, f.subscriber),
    );
    let key = member_key(f.subscriber_id, f.dependent);
    let patient_id = ids::patient(&config.payer_id, &key);
    if let Some(d) = f.dependent {
        out.merge_typed(
            ResourceType::Patient,
            patient_id.clone(),
            &patient(&patient_id, f.subscriber_id, d),
        );
    }
    let coverage_id = ids::coverage(&config.payer_id, &key, f.line);
    out.merge_typed(
        ResourceType::Coverage,
        coverage_id.clone(),
        &coverage(
            CoverageFacts {
                id: &coverage_id,
                subscriber_id: f.subscriber_id,
                subscriber_patient: &subscriber_patient,
                beneficiary: &patient_id,
                relationship: f.relationship,
                group: f.group,
                plan: None,
                period: None,
                status: None,
                policy_holder: None,
                payer_org,
            },
            config,
        ),
    );
    (patient_id, coverage_id)
}

/// A provider named by an NM1 loop (care team, requester): a Practitioner
/// for a person, an Organization otherwise, emitted the first time the set
/// names it. Returns its type, id and the display a reference shows.
pub fn emit_provider(
    party: &Party<'_>,
    taxonomy: Option<&str>,
    out: &mut Changes<'_>,
) -> (ResourceType, String, String) {
    if party.is_person() {
        let id = practitioner_id(party);
        if !out.has(ResourceType::Practitioner, &id) {
            let (id, value) = practitioner(party, taxonomy);
            out.merge(ResourceType::Practitioner, id, value);
        }
        (ResourceType::Practitioner, id, party.display())
    } else {
        let id = provider_org_id(party, None);
        if !out.has(ResourceType::Organization, &id) {
            let (id, value) = provider_org(party, None);
            out.merge(ResourceType::Organization, id, value);
        }
        (
            ResourceType::Organization,
            id,
            party.family.unwrap_or("").to_owned(),
        )
    }
}
