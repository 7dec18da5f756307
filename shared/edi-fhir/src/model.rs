//! Typed FHIR R4 pieces for the resources we emit per claim (the
//! ExplanationOfBenefit, Patient and Coverage), borrowing from the X12 input
//! where they can and serialised once, straight to JSON text, with serde.
//!
//! FHIR forbids `null`, `[]`, `{}` and `""`: every optional field is skipped
//! when absent or empty, which is what [`crate::json::object`] does for the
//! `Value` builders. Key order follows CARIN's element order; it does not
//! matter to [`crate::apply`], which reads a change into a `Value` first.

use std::borrow::Cow;

use crate::write::{ToJson, json_object, write_constant, write_prefixed_str};
use fhir::ResourceType;

use fhir::systems::{CARIN_SD, V2_0203};

/// A borrowed or owned string.
pub type Str<'a> = Cow<'a, str>;

/// A coding; `display` is left out when empty. The system and display are
/// our constants (they need no escaping); the code may come from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Coding<'a> {
    pub system: &'static str,
    pub code: Str<'a>,
    pub display: &'static str,
}

impl ToJson for Coding<'_> {
    fn write_json(&self, out: &mut String) {
        out.push_str("{\"system\":\"");
        write_constant(out, self.system);
        out.push_str("\",\"code\":");
        self.code.write_json(out);
        if !self.display.is_empty() {
            out.push_str(",\"display\":\"");
            write_constant(out, self.display);
            out.push('"');
        }
        out.push('}');
    }
}

/// A CodeableConcept with one coding and an optional text.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept<'a> {
    pub coding: [Coding<'a>; 1],
    pub text: Option<Str<'a>>,
}

json_object!(Concept<'a> { coding => "coding", text => "text" });

/// A CodeableConcept with one coding.
pub fn concept<'a>(
    system: &'static str,
    code: impl Into<Str<'a>>,
    display: &'static str,
) -> Concept<'a> {
    Concept {
        coding: [Coding {
            system,
            code: code.into(),
            display,
        }],
        text: None,
    }
}

/// A CodeableConcept with one coding and a text.
pub fn concept_text<'a>(
    system: &'static str,
    code: impl Into<Str<'a>>,
    display: &'static str,
    text: impl Into<Str<'a>>,
) -> Concept<'a> {
    Concept {
        text: Some(text.into()),
        ..concept(system, code, display)
    }
}

/// A relative literal reference `Type/id`, optionally with a display.
#[derive(Debug, Clone, PartialEq)]
pub struct Ref<'a> {
    pub resource_type: ResourceType,
    pub id: Str<'a>,
    pub display: Option<Str<'a>>,
}

impl ToJson for Ref<'_> {
    fn write_json(&self, out: &mut String) {
        out.push_str("{\"reference\":");
        write_prefixed_str(out, type_prefix(self.resource_type), &self.id);
        if let Some(display) = self.display.as_ref().filter(|d| !d.is_empty()) {
            out.push_str(",\"display\":");
            display.write_json(out);
        }
        out.push('}');
    }
}

/// `Type/` of a relative reference.
fn type_prefix(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::Patient => "Patient/",
        ResourceType::Coverage => "Coverage/",
        ResourceType::ExplanationOfBenefit => "ExplanationOfBenefit/",
        ResourceType::Organization => "Organization/",
        ResourceType::Practitioner => "Practitioner/",
        ResourceType::RelatedPerson => "RelatedPerson/",
        ResourceType::Consent => "Consent/",
        ResourceType::Provenance => "Provenance/",
        ResourceType::Endpoint => "Endpoint/",
        ResourceType::HealthcareService => "HealthcareService/",
        ResourceType::InsurancePlan => "InsurancePlan/",
        ResourceType::Location => "Location/",
        ResourceType::OrganizationAffiliation => "OrganizationAffiliation/",
        ResourceType::PractitionerRole => "PractitionerRole/",
    }
}

/// A reference; an empty display is left out.
pub fn reference<'a>(
    resource_type: ResourceType,
    id: impl Into<Str<'a>>,
    display: Option<impl Into<Str<'a>>>,
) -> Ref<'a> {
    Ref {
        resource_type,
        id: id.into(),
        display: display.map(Into::into).filter(|d| !d.is_empty()),
    }
}

/// A reference without a display.
pub fn plain_reference<'a>(resource_type: ResourceType, id: impl Into<Str<'a>>) -> Ref<'a> {
    reference(resource_type, id, None::<&str>)
}

/// US dollars from whole cents, exact to the cent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Money {
    pub cents: i64,
}

impl ToJson for Money {
    /// `{"value":12.5,"currency":"USD"}`: the value is the f64 `cents / 100`,
    /// written as serde_json writes that f64 (its shortest round-trip form
    /// is the exact decimal, trailing zeros trimmed, at least one decimal)
    /// without the float formatting, up to a trillion dollars.
    fn write_json(&self, out: &mut String) {
        out.push_str("{\"value\":");
        let abs = self.cents.unsigned_abs();
        if abs < 100_000_000_000_000 {
            if self.cents < 0 {
                out.push('-');
            }
            (abs / 100).write_json(out);
            out.push('.');
            let (tens, units) = ((abs % 100) / 10, abs % 10);
            out.push(char::from(b'0' + tens as u8));
            if units != 0 {
                out.push(char::from(b'0' + units as u8));
            }
        } else {
            (self.cents as f64 / 100.0).write_json(out);
        }
        out.push_str(",\"currency\":\"USD\"}");
    }
}

pub fn money(cents: i64) -> Money {
    Money { cents }
}

/// An identifier whose meaning is given by a type code (MB, uc…).
#[derive(Debug, Clone, PartialEq)]
pub struct Identifier<'a> {
    pub type_: Concept<'a>,
    pub system: &'a str,
    pub value: Str<'a>,
}

json_object!(Identifier<'a> { type_ => "type", system => "system", value => "value" });

pub fn typed_identifier<'a>(
    type_system: &'static str,
    type_code: &'static str,
    type_display: &'static str,
    system: &'a str,
    value: impl Into<Str<'a>>,
) -> Identifier<'a> {
    Identifier {
        type_: concept(type_system, type_code, type_display),
        system,
        value: value.into(),
    }
}

/// An identifier without a type.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainIdentifier<'a> {
    pub system: &'a str,
    pub value: &'a str,
}

json_object!(PlainIdentifier<'a> { system => "system", value => "value" });

/// `meta` with just the profile (a name under the CARIN base): the store
/// owns versionId and lastUpdated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta(pub &'static str);

impl ToJson for Meta {
    fn write_json(&self, out: &mut String) {
        out.push_str("{\"profile\":[");
        write_prefixed_str(out, CARIN_SD, self.0);
        out.push_str("]}");
    }
}

/// A period; either end may be unknown (both unknown: no period at all).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub start: Option<String>,
    pub end: Option<String>,
}

json_object!(Period { start => "start", end => "end" });

pub fn period(start: Option<String>, end: Option<String>) -> Option<Period> {
    (start.is_some() || end.is_some()).then_some(Period { start, end })
}

/// `{ "value": q }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    pub value: f64,
}

json_object!(Quantity { value => "value" });

/// A human name from X12 NM103 (family) / NM104 (given) / NM105 (middle).
#[derive(Debug, Clone, PartialEq)]
pub struct HumanName<'a> {
    pub use_: &'static str,
    pub family: Option<&'a str>,
    pub given: Vec<&'a str>,
}

json_object!(HumanName<'a> { use_ => "use", family => "family", given => "given" });

pub fn human_name<'a>(
    family: Option<&'a str>,
    given: Option<&'a str>,
    middle: Option<&'a str>,
) -> HumanName<'a> {
    HumanName {
        use_: "official",
        family,
        given: given.into_iter().chain(middle).collect(),
    }
}

/// An address from N3/N4 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Address<'a> {
    pub line: Vec<&'a str>,
    pub city: Option<&'a str>,
    pub state: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub country: &'static str,
}

json_object!(Address<'a> { line => "line", city => "city", state => "state", postal_code => "postalCode", country => "country" });

/// One adjudication (or total) entry: an amount, a reason with an amount,
/// a status reason, or a value.
#[derive(Debug, Clone, PartialEq)]
pub struct AdjudicationEntry<'a> {
    pub category: Concept<'a>,
    pub reason: Option<Concept<'a>>,
    pub amount: Option<Money>,
    pub value: Option<f64>,
}

json_object!(AdjudicationEntry<'a> { category => "category", reason => "reason", amount => "amount", value => "value" });

/// `related`: a prior claim by its identifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Related<'a> {
    pub relationship: Concept<'a>,
    pub reference: Identifier<'a>,
}

json_object!(Related<'a> { relationship => "relationship", reference => "reference" });

#[derive(Debug, Clone, PartialEq)]
pub struct Payee<'a> {
    pub type_: Concept<'a>,
    pub party: Ref<'a>,
}

json_object!(Payee<'a> { type_ => "type", party => "party" });

#[derive(Debug, Clone, PartialEq)]
pub struct CareTeam<'a> {
    pub sequence: usize,
    pub provider: Ref<'a>,
    pub role: Concept<'a>,
    pub qualification: Option<Concept<'a>>,
}

json_object!(CareTeam<'a> { sequence => "sequence", provider => "provider", role => "role", qualification => "qualification" });

/// One supportingInfo entry: `sequence`, `category` and one value.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportingInfo<'a> {
    pub sequence: usize,
    pub category: Concept<'a>,
    pub code: Option<Concept<'a>>,
    pub timing_date: Option<String>,
    pub timing_period: Option<Period>,
    pub value_string: Option<&'a str>,
    pub value_reference: Option<Ref<'a>>,
}

json_object!(SupportingInfo<'a> { sequence => "sequence", category => "category", code => "code", timing_date => "timingDate", timing_period => "timingPeriod", value_string => "valueString", value_reference => "valueReference" });

/// The value of a supportingInfo entry.
#[derive(Debug, Clone, PartialEq)]
pub enum InfoValue<'a> {
    Code(Concept<'a>),
    TimingDate(String),
    TimingPeriod(Option<Period>),
    String(&'a str),
    Reference(Ref<'a>),
}

/// Numbers supportingInfo entries from 1 with the CARIN category system.
pub fn supporting_info<'a>(
    list: impl IntoIterator<Item = (&'static str, &'static str, InfoValue<'a>)>,
) -> Vec<SupportingInfo<'a>> {
    list.into_iter()
        .enumerate()
        .map(|(i, (code, display, value))| {
            let mut info = SupportingInfo {
                sequence: i + 1,
                category: concept(fhir::systems::C4BB_SUPPORTING_INFO, code, display),
                code: None,
                timing_date: None,
                timing_period: None,
                value_string: None,
                value_reference: None,
            };
            match value {
                InfoValue::Code(c) => info.code = Some(c),
                InfoValue::TimingDate(d) => info.timing_date = Some(d),
                InfoValue::TimingPeriod(p) => info.timing_period = p,
                InfoValue::String(s) => info.value_string = Some(s).filter(|s| !s.is_empty()),
                InfoValue::Reference(r) => info.value_reference = Some(r),
            }
            info
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis<'a> {
    pub sequence: usize,
    pub diagnosis_codeable_concept: Concept<'a>,
    pub type_: [Concept<'a>; 1],
    pub on_admission: Option<Concept<'a>>,
}

json_object!(Diagnosis<'a> { sequence => "sequence", diagnosis_codeable_concept => "diagnosisCodeableConcept", type_ => "type", on_admission => "onAdmission" });

#[derive(Debug, Clone, PartialEq)]
pub struct Procedure<'a> {
    pub sequence: usize,
    pub type_: [Concept<'a>; 1],
    pub date: Option<String>,
    pub procedure_codeable_concept: Concept<'a>,
}

json_object!(Procedure<'a> { sequence => "sequence", type_ => "type", date => "date", procedure_codeable_concept => "procedureCodeableConcept" });

#[derive(Debug, Clone, PartialEq)]
pub struct Insurance<'a> {
    pub focal: bool,
    pub coverage: Ref<'a>,
}

json_object!(Insurance<'a> { focal => "focal", coverage => "coverage" });

#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    pub sequence: u64,
    pub care_team_sequence: Option<[usize; 1]>,
    pub diagnosis_sequence: Vec<u64>,
    pub revenue: Option<Concept<'a>>,
    pub product_or_service: Concept<'a>,
    pub modifier: Vec<Concept<'a>>,
    pub serviced_date: Option<String>,
    pub serviced_period: Option<Period>,
    pub location_codeable_concept: Option<Concept<'a>>,
    pub quantity: Option<Quantity>,
    pub body_site: Option<Concept<'a>>,
    pub sub_site: Vec<Concept<'a>>,
    pub adjudication: Vec<AdjudicationEntry<'a>>,
}

json_object!(Item<'a> { sequence => "sequence", care_team_sequence => "careTeamSequence", diagnosis_sequence => "diagnosisSequence", revenue => "revenue", product_or_service => "productOrService", modifier => "modifier", serviced_date => "servicedDate", serviced_period => "servicedPeriod", location_codeable_concept => "locationCodeableConcept", quantity => "quantity", body_site => "bodySite", sub_site => "subSite", adjudication => "adjudication" });

/// `servicedDate` for a single day, `servicedPeriod` for a range.
pub fn serviced(p: Option<x12::Period>) -> (Option<String>, Option<Period>) {
    match p {
        Some(x12::Period::Date(d)) => (Some(crate::read::iso(d)), None),
        Some(x12::Period::Range(s, e)) if s == e => (Some(crate::read::iso(s)), None),
        Some(x12::Period::Range(s, e)) => (
            None,
            period(Some(crate::read::iso(s)), Some(crate::read::iso(e))),
        ),
        None => (None, None),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payment<'a> {
    pub type_: Concept<'a>,
    pub date: Option<Str<'a>>,
    pub amount: Money,
    pub identifier: Option<PlainIdentifier<'a>>,
}

json_object!(Payment<'a> { type_ => "type", date => "date", amount => "amount", identifier => "identifier" });

/// A C4BB ExplanationOfBenefit (any of the four profiles), as an 837 or an
/// 835 contributes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Eob<'a> {
    pub resource_type: &'static str,
    pub id: &'a str,
    pub meta: Meta,
    pub identifier: [Identifier<'a>; 1],
    pub status: &'static str,
    pub type_: Concept<'a>,
    pub sub_type: Option<Concept<'a>>,
    pub use_: &'static str,
    pub patient: Ref<'a>,
    pub billable_period: Option<Period>,
    pub created: Option<Str<'a>>,
    pub insurer: Ref<'a>,
    pub provider: Option<Ref<'a>>,
    pub related: Vec<Related<'a>>,
    pub payee: Option<Payee<'a>>,
    pub outcome: &'static str,
    pub care_team: Vec<CareTeam<'a>>,
    pub supporting_info: Vec<SupportingInfo<'a>>,
    pub diagnosis: Vec<Diagnosis<'a>>,
    pub procedure: Vec<Procedure<'a>>,
    pub insurance: [Insurance<'a>; 1],
    pub item: Vec<Item<'a>>,
    pub adjudication: Vec<AdjudicationEntry<'a>>,
    pub total: Vec<AdjudicationEntry<'a>>,
    pub payment: Option<Payment<'a>>,
}

json_object!(Eob<'a> { resource_type => "resourceType", id => "id", meta => "meta", identifier => "identifier", status => "status", type_ => "type", sub_type => "subType", use_ => "use", patient => "patient", billable_period => "billablePeriod", created => "created", insurer => "insurer", provider => "provider", related => "related", payee => "payee", outcome => "outcome", care_team => "careTeam", supporting_info => "supportingInfo", diagnosis => "diagnosis", procedure => "procedure", insurance => "insurance", item => "item", adjudication => "adjudication", total => "total", payment => "payment" });

/// A member identifier (MB) in the plan's namespace.
pub fn member_identifier(member_id: &str) -> Identifier<'_> {
    typed_identifier(
        V2_0203,
        "MB",
        "Member Number",
        fhir::systems::PLAN_MEMBER_ID,
        member_id,
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct Telecom<'a> {
    pub system: &'static str,
    pub value: Option<&'a str>,
    pub use_: &'static str,
}

json_object!(Telecom<'a> { system => "system", value => "value", use_ => "use" });

/// A C4BB-Patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Patient<'a> {
    pub resource_type: &'static str,
    pub id: &'a str,
    pub meta: Meta,
    pub identifier: [Identifier<'a>; 1],
    pub active: bool,
    pub telecom: Vec<Telecom<'a>>,
    pub name: [HumanName<'a>; 1],
    pub gender: Option<&'static str>,
    pub birth_date: Option<&'a str>,
    pub deceased_date_time: Option<String>,
    pub address: Vec<Address<'a>>,
}

json_object!(Patient<'a> { resource_type => "resourceType", id => "id", meta => "meta", identifier => "identifier", active => "active", telecom => "telecom", name => "name", gender => "gender", birth_date => "birthDate", deceased_date_time => "deceasedDateTime", address => "address" });

#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    pub url: &'static str,
    pub value_code: &'static str,
}

json_object!(Extension { url => "url", value_code => "valueCode" });

#[derive(Debug, Clone, PartialEq)]
pub struct CoverageClass<'a> {
    pub type_: Concept<'a>,
    pub value: &'a str,
    pub name: Option<&'a str>,
}

json_object!(CoverageClass<'a> { type_ => "type", value => "value", name => "name" });

/// A C4BB-Coverage.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage<'a> {
    pub resource_type: &'static str,
    pub id: &'a str,
    pub meta: Meta,
    pub extension: [Extension; 1],
    pub identifier: [Identifier<'a>; 1],
    pub status: Option<&'a str>,
    pub type_: Concept<'a>,
    pub policy_holder: Option<Ref<'a>>,
    pub subscriber: Ref<'a>,
    pub subscriber_id: &'a str,
    pub beneficiary: Ref<'a>,
    pub relationship: Concept<'a>,
    pub period: Option<Period>,
    pub payor: [Ref<'a>; 1],
    pub class: Vec<CoverageClass<'a>>,
}

json_object!(Coverage<'a> { resource_type => "resourceType", id => "id", meta => "meta", extension => "extension", identifier => "identifier", status => "status", type_ => "type", policy_holder => "policyHolder", subscriber => "subscriber", subscriber_id => "subscriberId", beneficiary => "beneficiary", relationship => "relationship", period => "period", payor => "payor", class => "class" });

/// `related` entry pointing at a prior claim by its ICN (837 REF*F8, or the
/// ICN an 835 correction supersedes).
pub fn related_prior(icn: &str) -> Related<'_> {
    Related {
        relationship: concept(fhir::systems::C4BB_RELATED_CLAIM, "prior", "Prior"),
        reference: uc_identifier(fhir::systems::PLAN_CLAIM_ID, icn),
    }
}

/// The EOB's `identifier[uniqueclaimid]`.
pub fn uc_identifier<'a>(system: &'a str, value: &'a str) -> Identifier<'a> {
    typed_identifier(
        fhir::systems::C4BB_IDENTIFIER_TYPE,
        "uc",
        "Unique Claim ID",
        system,
        value,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_as_serde_json_writes_the_f64() {
        let mut cents: Vec<i64> = (-1_000..=1_000).collect();
        cents.extend([
            123_456_789,
            -987_654_321,
            99_999_999_999_999,
            100_000_000_000_000,
            i64::MAX,
            i64::MIN,
        ]);
        for c in cents {
            let mut out = String::new();
            money(c).write_json(&mut out);
            let expect = serde_json::json!({ "value": c as f64 / 100.0, "currency": "USD" });
            let parsed: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            assert_eq!(parsed, expect, "{c}");
            let value = out
                .trim_start_matches("{\"value\":")
                .trim_end_matches(",\"currency\":\"USD\"}");
            let f = serde_json::to_string(&(c as f64 / 100.0)).unwrap_or_default();
            assert_eq!(value, f, "{c}");
        }
    }

    #[test]
    fn reference_prefixes_are_the_type_names() {
        for t in ResourceType::ALL {
            assert_eq!(type_prefix(t), format!("{}/", t.as_str()));
        }
    }
}
