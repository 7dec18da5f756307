//! FHIR R4 data types as small JSON builders, and the code systems we use.
//!
//! The URLs and shapes are the ones `demo-data` uses (that crate keeps its
//! helpers private and works in whole cents from a catalogue, while we build
//! from borrowed X12 text), so a converted claim looks like a demo claim.

use fhir::{Reference, ResourceType};
use serde_json::{Map, Value, json};

pub const CARIN_SD: &str = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/";
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
pub const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
pub const PAYEE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/payeetype";
pub const CARE_TEAM_ROLE_HL7: &str = "http://terminology.hl7.org/CodeSystem/claimcareteamrole";
pub const DIAGNOSIS_TYPE_HL7: &str = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype";
pub const SUBSCRIBER_RELATIONSHIP: &str =
    "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
pub const COVERAGE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
pub const TOOTH: &str = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem";
pub const C4BB_IDENTIFIER_TYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType";
pub const C4BB_ADJUDICATION: &str = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication";
pub const C4BB_ADJUDICATION_DISCRIMINATOR: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator";
pub const C4BB_PAYER_ADJUDICATION_STATUS: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus";
pub const C4BB_CARE_TEAM_ROLE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole";
pub const C4BB_DIAGNOSIS_TYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType";
pub const C4BB_PROCEDURE_TYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimProcedureType";
pub const C4BB_SUPPORTING_INFO: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType";
pub const C4BB_INSTITUTIONAL_SUBTYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType";
pub const C4BB_PAYEE_TYPE: &str = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayeeType";
pub const C4BB_RELATED_CLAIM: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBRelatedClaimRelationshipCodes";
pub const C4BB_SURFACE: &str = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSurfaceCodes";
pub const ICD10_CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const ICD9_CM: &str = "http://terminology.hl7.org/CodeSystem/icd9cm";
pub const ICD10_PCS: &str = "http://www.cms.gov/Medicare/Coding/ICD10";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const HCPCS: &str = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets";
pub const CDT: &str = "http://www.ada.org/cdt";
pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
pub const PLACE_OF_SERVICE: &str =
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set";
pub const POA: &str =
    "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/HospitalAcqCond/Coding";
pub const MS_DRG: &str = "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/AcuteInpatientPPS/MS-DRG-Classifications-and-Software";
pub const NUBC_REVENUE: &str = "https://www.nubc.org/CodeSystem/RevenueCodes";
pub const NUBC_TYPE_OF_BILL: &str = "https://www.nubc.org/CodeSystem/TypeOfBill";
pub const NUBC_POINT_OF_ORIGIN: &str = "https://www.nubc.org/CodeSystem/PointOfOrigin";
pub const NUBC_ADMIT_TYPE: &str = "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit";
pub const NUBC_DISCHARGE: &str = "https://www.nubc.org/CodeSystem/PatDischargeStatus";
pub const CARC: &str = "https://x12.org/codes/claim-adjustment-reason-codes";
pub const NUCC_TAXONOMY: &str = "http://nucc.org/provider-taxonomy";
pub const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
pub const TAX_ID: &str = "urn:oid:2.16.840.1.113883.4.4";
pub const COVERAGE_KIND_EXT: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Coverage.kind";

/// The plan's identifier namespaces, the same as demo-data's.
pub const PLAN_MEMBER_ID: &str = "https://demo-health-plan.example.org/fhir/member-id";
pub const PLAN_CLAIM_ID: &str = "https://demo-health-plan.example.org/fhir/claim-control-number";
pub const PLAN_PAYER_ID: &str = "https://demo-health-plan.example.org/fhir/payer-id";
/// Stand-in for the claim control number while no adjudication is known: the
/// EOB's own claim key, in a system of its own so nobody mistakes it for an ICN.
pub const PLAN_CLAIM_KEY: &str = "https://demo-health-plan.example.org/fhir/claim-key";
/// Payment trace numbers (835 TRN02).
pub const PLAN_PAYMENT_TRACE: &str = "https://demo-health-plan.example.org/fhir/payment-trace";
/// Provider patient control numbers (CLM01 / CLP01).
pub const PATIENT_ACCOUNT: &str =
    "https://demo-health-plan.example.org/fhir/patient-account-number";

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
