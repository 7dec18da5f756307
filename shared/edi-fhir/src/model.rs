//! Typed FHIR R4 pieces for the resources we emit per claim (the
//! ExplanationOfBenefit, Patient and Coverage), borrowing from the X12 input
//! where they can and serialised once, straight to JSON text, with serde.
//!
//! FHIR forbids `null`, `[]`, `{}` and `""`: every optional field is skipped
//! when absent or empty, which is what [`crate::json::object`] does for the
//! `Value` builders. Key order follows CARIN's element order; it does not
//! matter to [`crate::apply`], which reads a change into a `Value` first.

use std::borrow::Cow;

use fhir::ResourceType;
use serde::{Serialize, Serializer};

use crate::json::{CARIN_SD, V2_0203};

/// A borrowed or owned string.
pub type Str<'a> = Cow<'a, str>;

/// A coding; `display` is left out when empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coding<'a> {
    pub system: &'a str,
    pub code: Str<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub display: &'a str,
}

/// A CodeableConcept with one coding and an optional text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Concept<'a> {
    pub coding: [Coding<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Str<'a>>,
}

/// A CodeableConcept with one coding.
pub fn concept<'a>(system: &'a str, code: impl Into<Str<'a>>, display: &'a str) -> Concept<'a> {
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
    system: &'a str,
    code: impl Into<Str<'a>>,
    display: &'a str,
    text: impl Into<Str<'a>>,
) -> Concept<'a> {
    Concept {
        text: Some(text.into()),
        ..concept(system, code, display)
    }
}

/// A relative literal reference `Type/id`, optionally with a display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ref<'a> {
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<Str<'a>>,
}

/// A reference; an empty display is left out.
pub fn reference<'a>(
    resource_type: ResourceType,
    id: &str,
    display: Option<impl Into<Str<'a>>>,
) -> Ref<'a> {
    let type_name = resource_type.as_str();
    let mut reference = String::with_capacity(type_name.len() + 1 + id.len());
    reference.push_str(type_name);
    reference.push('/');
    reference.push_str(id);
    Ref {
        reference,
        display: display.map(Into::into).filter(|d| !d.is_empty()),
    }
}

/// A reference without a display.
pub fn plain_reference(resource_type: ResourceType, id: &str) -> Ref<'static> {
    reference(resource_type, id, None::<&str>)
}

/// US dollars from whole cents, exact to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Money {
    pub value: f64,
    pub currency: &'static str,
}

pub fn money(cents: i64) -> Money {
    Money {
        value: cents as f64 / 100.0,
        currency: "USD",
    }
}

/// An identifier whose meaning is given by a type code (MB, uc…).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Identifier<'a> {
    #[serde(rename = "type")]
    pub type_: Concept<'a>,
    pub system: &'a str,
    pub value: Str<'a>,
}

pub fn typed_identifier<'a>(
    type_system: &'a str,
    type_code: &'a str,
    type_display: &'a str,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlainIdentifier<'a> {
    pub system: &'a str,
    pub value: &'a str,
}

/// `meta` with just the profile (a name under the CARIN base): the store
/// owns versionId and lastUpdated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta(pub &'static str);

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Url(&'static str);
        impl Serialize for Url {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&format_args!("{CARIN_SD}{}", self.0))
            }
        }
        let mut m = s.serialize_struct("Meta", 1)?;
        m.serialize_field("profile", &[Url(self.0)])?;
        m.end()
    }
}

/// A period; either end may be unknown (both unknown: no period at all).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

pub fn period(start: Option<String>, end: Option<String>) -> Option<Period> {
    (start.is_some() || end.is_some()).then_some(Period { start, end })
}

/// `{ "value": q }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantity {
    pub value: f64,
}

/// A human name from X12 NM103 (family) / NM104 (given) / NM105 (middle).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HumanName<'a> {
    #[serde(rename = "use")]
    pub use_: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<&'a str>,
}

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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<&'a str>,
    pub country: &'static str,
}

/// One adjudication (or total) entry: an amount, a reason with an amount,
/// a status reason, or a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdjudicationEntry<'a> {
    pub category: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Concept<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// `related`: a prior claim by its identifier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related<'a> {
    pub relationship: Concept<'a>,
    pub reference: Identifier<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payee<'a> {
    #[serde(rename = "type")]
    pub type_: Concept<'a>,
    pub party: Ref<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CareTeam<'a> {
    pub sequence: usize,
    pub provider: Ref<'a>,
    pub role: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualification: Option<Concept<'a>>,
}

/// One supportingInfo entry: `sequence`, `category` and one value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportingInfo<'a> {
    pub sequence: usize,
    pub category: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Concept<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_reference: Option<Ref<'a>>,
}

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
    list: impl IntoIterator<Item = (&'a str, &'a str, InfoValue<'a>)>,
) -> Vec<SupportingInfo<'a>> {
    list.into_iter()
        .enumerate()
        .map(|(i, (code, display, value))| {
            let mut info = SupportingInfo {
                sequence: i + 1,
                category: concept(crate::json::C4BB_SUPPORTING_INFO, code, display),
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis<'a> {
    pub sequence: usize,
    pub diagnosis_codeable_concept: Concept<'a>,
    #[serde(rename = "type")]
    pub type_: [Concept<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_admission: Option<Concept<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Procedure<'a> {
    pub sequence: usize,
    #[serde(rename = "type")]
    pub type_: [Concept<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub procedure_codeable_concept: Concept<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insurance<'a> {
    pub focal: bool,
    pub coverage: Ref<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item<'a> {
    pub sequence: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub care_team_sequence: Option<[usize; 1]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnosis_sequence: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue: Option<Concept<'a>>,
    pub product_or_service: Concept<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modifier: Vec<Concept<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serviced_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serviced_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_codeable_concept: Option<Concept<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_site: Option<Concept<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_site: Vec<Concept<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjudication: Vec<AdjudicationEntry<'a>>,
}

/// `servicedDate` for a single day, `servicedPeriod` for a range.
pub fn serviced(p: Option<x12::Period>) -> (Option<String>, Option<Period>) {
    match p {
        Some(x12::Period::Date(d)) => (Some(d.to_string()), None),
        Some(x12::Period::Range(s, e)) if s == e => (Some(s.to_string()), None),
        Some(x12::Period::Range(s, e)) => (None, period(Some(s.to_string()), Some(e.to_string()))),
        None => (None, None),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payment<'a> {
    #[serde(rename = "type")]
    pub type_: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<Str<'a>>,
    pub amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<PlainIdentifier<'a>>,
}

/// A C4BB ExplanationOfBenefit (any of the four profiles), as an 837 or an
/// 835 contributes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eob<'a> {
    pub resource_type: &'static str,
    pub id: &'a str,
    pub meta: Meta,
    pub identifier: [Identifier<'a>; 1],
    pub status: &'static str,
    #[serde(rename = "type")]
    pub type_: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<Concept<'a>>,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub patient: Ref<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billable_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Str<'a>>,
    pub insurer: Ref<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Ref<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee: Option<Payee<'a>>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub care_team: Vec<CareTeam<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supporting_info: Vec<SupportingInfo<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<Diagnosis<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub procedure: Vec<Procedure<'a>>,
    pub insurance: [Insurance<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<Item<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjudication: Vec<AdjudicationEntry<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub total: Vec<AdjudicationEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment<'a>>,
}

/// A member identifier (MB) in the plan's namespace.
pub fn member_identifier(member_id: &str) -> Identifier<'_> {
    typed_identifier(
        V2_0203,
        "MB",
        "Member Number",
        crate::json::PLAN_MEMBER_ID,
        member_id,
    )
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Telecom<'a> {
    pub system: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a str>,
    #[serde(rename = "use")]
    pub use_: &'static str,
}

/// A C4BB-Patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient<'a> {
    pub resource_type: &'static str,
    pub id: &'a str,
    pub meta: Meta,
    pub identifier: [Identifier<'a>; 1],
    pub active: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<Telecom<'a>>,
    pub name: [HumanName<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deceased_date_time: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    pub url: &'static str,
    pub value_code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageClass<'a> {
    #[serde(rename = "type")]
    pub type_: Concept<'a>,
    pub value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// A C4BB-Coverage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage<'a> {
    pub resource_type: &'static str,
    pub id: &'a str,
    pub meta: Meta,
    pub extension: [Extension; 1],
    pub identifier: [Identifier<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    #[serde(rename = "type")]
    pub type_: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_holder: Option<Ref<'a>>,
    pub subscriber: Ref<'a>,
    pub subscriber_id: &'a str,
    pub beneficiary: Ref<'a>,
    pub relationship: Concept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    pub payor: [Ref<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub class: Vec<CoverageClass<'a>>,
}
