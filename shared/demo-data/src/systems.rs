//! Code system and identifier system URLs, named once so that a typo cannot make one
//! EOB type disagree with another. Values follow CARIN BB 2.x and THO.

pub(crate) const CARIN_SD: &str = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/";

pub(crate) const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub(crate) const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
pub(crate) const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
pub(crate) const PAYEE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/payeetype";
pub(crate) const CARE_TEAM_ROLE_HL7: &str =
    "http://terminology.hl7.org/CodeSystem/claimcareteamrole";
pub(crate) const DIAGNOSIS_TYPE_HL7: &str =
    "http://terminology.hl7.org/CodeSystem/ex-diagnosistype";
pub(crate) const RELATED_CLAIM_HL7: &str =
    "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship";
pub(crate) const SUBSCRIBER_RELATIONSHIP: &str =
    "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
pub(crate) const COVERAGE_CLASS: &str = "http://terminology.hl7.org/CodeSystem/coverage-class";
pub(crate) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub(crate) const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
pub(crate) const ORGANIZATION_TYPE: &str =
    "http://terminology.hl7.org/CodeSystem/organization-type";
pub(crate) const DATA_ABSENT_REASON: &str =
    "http://terminology.hl7.org/CodeSystem/data-absent-reason";
pub(crate) const TOOTH: &str =
    "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem";
pub(crate) const NCPDP_DAW: &str =
    "http://terminology.hl7.org/CodeSystem/NCPDPDispensedAsWrittenOrProductSelectionCode";
pub(crate) const NCPDP_BRAND_GENERIC: &str =
    "http://terminology.hl7.org/CodeSystem/NCPDPBrandGenericIndicator";
pub(crate) const NCPDP_RX_ORIGIN: &str =
    "http://terminology.hl7.org/CodeSystem/NCPDPPrescriptionOriginCode";
pub(crate) const NCPDP_COMPOUND: &str = "http://terminology.hl7.org/CodeSystem/NCPDPCompoundCode";

pub(crate) const C4BB_IDENTIFIER_TYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType";
pub(crate) const C4BB_ADJUDICATION: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication";
pub(crate) const C4BB_ADJUDICATION_DISCRIMINATOR: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator";
pub(crate) const C4BB_PAYER_ADJUDICATION_STATUS: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayerAdjudicationStatus";
pub(crate) const C4BB_CARE_TEAM_ROLE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole";
pub(crate) const C4BB_DIAGNOSIS_TYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType";
pub(crate) const C4BB_PROCEDURE_TYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimProcedureType";
pub(crate) const C4BB_SUPPORTING_INFO: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType";
pub(crate) const C4BB_INSTITUTIONAL_SUBTYPE: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType";
pub(crate) const C4BB_PAYEE_TYPE: &str = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayeeType";
pub(crate) const C4BB_RELATED_CLAIM: &str =
    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBRelatedClaimRelationshipCodes";
pub(crate) const C4BB_SURFACE: &str = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSurfaceCodes";

pub(crate) const ICD10_CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub(crate) const ICD10_PCS: &str = "http://www.cms.gov/Medicare/Coding/ICD10";
pub(crate) const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub(crate) const HCPCS: &str = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets";
pub(crate) const CDT: &str = "http://www.ada.org/cdt";
pub(crate) const NDC: &str = "http://hl7.org/fhir/sid/ndc";
pub(crate) const PLACE_OF_SERVICE: &str =
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set";
pub(crate) const POA: &str =
    "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/HospitalAcqCond/Coding";
pub(crate) const MS_DRG: &str = "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/AcuteInpatientPPS/MS-DRG-Classifications-and-Software";
pub(crate) const NUBC_REVENUE: &str = "https://www.nubc.org/CodeSystem/RevenueCodes";
pub(crate) const NUBC_TYPE_OF_BILL: &str = "https://www.nubc.org/CodeSystem/TypeOfBill";
pub(crate) const NUBC_POINT_OF_ORIGIN: &str = "https://www.nubc.org/CodeSystem/PointOfOrigin";
pub(crate) const NUBC_ADMIT_TYPE: &str =
    "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit";
pub(crate) const NUBC_DISCHARGE: &str = "https://www.nubc.org/CodeSystem/PatDischargeStatus";
pub(crate) const CARC: &str = "https://x12.org/codes/claim-adjustment-reason-codes";
pub(crate) const NUCC_TAXONOMY: &str = "http://nucc.org/provider-taxonomy";

pub(crate) const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
pub(crate) const TAX_ID: &str = "urn:oid:2.16.840.1.113883.4.4";
pub(crate) const NAIC: &str = "urn:oid:2.16.840.1.113883.6.300";
pub(crate) const COVERAGE_KIND_EXT: &str =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-Coverage.kind";

/// Our (synthetic) plan's own identifier namespaces. `example.org` is reserved, so
/// nothing here can be mistaken for a real payer's identifiers.
pub(crate) const PLAN_MEMBER_ID: &str = "https://demo-health-plan.example.org/fhir/member-id";
pub(crate) const PLAN_CLAIM_ID: &str =
    "https://demo-health-plan.example.org/fhir/claim-control-number";
pub(crate) const PLAN_PAYER_ID: &str = "https://demo-health-plan.example.org/fhir/payer-id";

/// The full canonical URL of a CARIN BB profile, e.g. `C4BB-Patient`.
pub(crate) fn carin_profile(name: &str) -> String {
    format!("{CARIN_SD}{name}")
}

/// Tests spell CARIN code systems from their name, independently of the constants above.
#[cfg(test)]
pub(crate) fn carin_code_system(name: &str) -> String {
    format!("http://hl7.org/fhir/us/carin-bb/CodeSystem/{name}")
}
