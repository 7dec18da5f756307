//! Code system, identifier system and profile URLs of CARIN Blue Button 2.x and
//! HL7 Terminology (THO), named once for every crate that writes FHIR (the X12
//! mapping and the demo data), so a typo cannot make one EOB disagree with another.

pub const CARIN_SD: &str = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/";

pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
pub const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
pub const PAYEE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/payeetype";
pub const CARE_TEAM_ROLE_HL7: &str = "http://terminology.hl7.org/CodeSystem/claimcareteamrole";
pub const DIAGNOSIS_TYPE_HL7: &str = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype";
pub const RELATED_CLAIM_HL7: &str =
    "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship";
pub const SUBSCRIBER_RELATIONSHIP: &str =
    "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
pub const COVERAGE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
pub const DATA_ABSENT_REASON: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
pub const TOOTH: &str = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem";
pub const NCPDP_DAW: &str =
    "http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode";
pub const NCPDP_BRAND_GENERIC: &str =
    "http://terminology.hl7.org/CodeSystem/NCPDPBrandGenericIndicator";
pub const NCPDP_RX_ORIGIN: &str =
    "http://terminology.hl7.org/CodeSystem/NCPDPPrescriptionOriginCode";
pub const NCPDP_COMPOUND: &str = "http://terminology.hl7.org/CodeSystem/NCPDPCompoundCode";

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
pub const NAIC: &str = "urn:oid:2.16.840.1.113883.6.300";
pub const COVERAGE_KIND_EXT: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Coverage.kind";

/// Da Vinci PDex Prior Authorization (an ExplanationOfBenefit with
/// `use = preauthorization`) and the extensions and codes it uses.
pub const PDEX_PRIOR_AUTHORIZATION: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-priorauthorization";
pub const PDEX_REVIEW_ACTION: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewAction";
pub const PDEX_REVIEW_ACTION_CODE: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-reviewActionCode";
pub const PDEX_LEVEL_OF_SERVICE: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/extension-levelOfServiceCode";
pub const PDEX_ADJUDICATION_DISCRIMINATOR: &str =
    "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PDexAdjudicationDiscriminator";
/// PAS item extensions PDex Prior Authorization reuses.
pub const PAS_ITEM_TRACE_NUMBER: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemTraceNumber";
pub const PAS_ITEM_PREAUTH_PERIOD: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemPreAuthPeriod";
/// X12 278 HCR01 action codes (element 306).
pub const X12_ACTION_CODE: &str = "https://codesystem.x12.org/005010/306";
/// X12 278 HCR03 health care services review decision reasons (code source 886).
pub const X12_REVIEW_DECISION_REASON: &str = "https://codesystem.x12.org/external/886";
/// X12 278 UM06 level of service (element 1338).
pub const X12_LEVEL_OF_SERVICE: &str = "https://codesystem.x12.org/005010/1338";
/// X12 service type codes (278 UM03, 271 EB03).
pub const X12_SERVICE_TYPE: &str = "https://x12.org/codes/service-type-codes";
/// `ExplanationOfBenefit.use` (claim | preauthorization | predetermination).
pub const CLAIM_USE: &str = "http://hl7.org/fhir/claim-use";

/// Our (synthetic) plan's own identifier namespaces. `example.org` is reserved, so
/// nothing here can be mistaken for a real payer's identifiers.
pub const PLAN_MEMBER_ID: &str = "https://demo-health-plan.example.org/fhir/member-id";
pub const PLAN_CLAIM_ID: &str = "https://demo-health-plan.example.org/fhir/claim-control-number";
pub const PLAN_PAYER_ID: &str = "https://demo-health-plan.example.org/fhir/payer-id";
/// Stand-in for the claim control number while no adjudication is known: the
/// EOB's own claim key, in a system of its own so nobody mistakes it for an ICN.
pub const PLAN_CLAIM_KEY: &str = "https://demo-health-plan.example.org/fhir/claim-key";
/// Payment trace numbers (835 TRN02).
pub const PLAN_PAYMENT_TRACE: &str = "https://demo-health-plan.example.org/fhir/payment-trace";
/// Provider patient control numbers (837 CLM01, 835 CLP01).
pub const PATIENT_ACCOUNT: &str =
    "https://demo-health-plan.example.org/fhir/patient-account-number";
/// Prior authorization certification numbers (278 HCR02), per UMO.
pub const PLAN_PREAUTH_NUMBER: &str =
    "https://demo-health-plan.example.org/fhir/prior-authorization-number";
/// The requester's patient event trace numbers (278 2000E TRN02).
pub const PLAN_PREAUTH_TRACE: &str =
    "https://demo-health-plan.example.org/fhir/prior-authorization-trace";

/// The full canonical URL of a CARIN BB profile, e.g. `C4BB-Patient`.
pub fn carin_profile(name: &str) -> String {
    format!("{CARIN_SD}{name}")
}
