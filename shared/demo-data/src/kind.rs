//! The five CARIN EOB types as data: everything that differs between them is answered
//! here, so a single builder renders all of them.

use crate::amounts::dollars;
use crate::catalog::{self, Scenario};
use crate::directory::OrgRole;
use crate::elements::Code;
use fhir::systems::{
    C4BB_CARE_TEAM_ROLE, C4BB_DIAGNOSIS_TYPE, C4BB_INSTITUTIONAL_SUBTYPE, CARE_TEAM_ROLE_HL7,
    CLAIM_TYPE, PLACE_OF_SERVICE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClaimKind {
    InpatientInstitutional,
    OutpatientInstitutional,
    ProfessionalNonClinician,
    Oral,
    Pharmacy,
}

/// A supportingInfo slice of the CARIN profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slice {
    ClaimReceivedDate,
    AdmissionPeriod,
    TypeOfBill,
    AdmissionType,
    PointOfOrigin,
    DischargeStatus,
    Drg,
    MedicalRecordNumber,
    PatientAccountNumber,
    ServiceFacility,
    BrandGenericIndicator,
    RxOriginCode,
    RefillNumber,
    RefillsAuthorized,
    DawCode,
    DaysSupply,
    CompoundCode,
}

/// Which practitioners fill a care-team role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Role {
    pub code: Code,
    pub dentist: bool,
    /// Whether the role is always present or only on some claims.
    pub always: bool,
}

/// Member cost sharing by claim type (a simple PPO design).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CostShare {
    pub copay: i64,
    pub coinsurance_in: i64,
    pub coinsurance_out: i64,
    pub deductible_applies: bool,
}

const fn role(
    system: &'static str,
    code: &'static str,
    display: &'static str,
    always: bool,
) -> Role {
    Role {
        code: Code::new(system, code, display),
        dentist: false,
        always,
    }
}

const ATTENDING: Role = role(C4BB_CARE_TEAM_ROLE, "attending", "Attending", true);
const OPERATING: Role = role(C4BB_CARE_TEAM_ROLE, "operating", "Operating", true);
const REFERRING: Role = role(C4BB_CARE_TEAM_ROLE, "referring", "Referring", false);
const RENDERING: Role = role(C4BB_CARE_TEAM_ROLE, "rendering", "Rendering provider", true);
const PRESCRIBING: Role = role(
    C4BB_CARE_TEAM_ROLE,
    "prescribing",
    "Prescribing provider",
    true,
);
const PRIMARY: Role = role(CARE_TEAM_ROLE_HL7, "primary", "Primary provider", false);
const DENTIST_RENDERING: Role = Role {
    dentist: true,
    ..RENDERING
};

impl ClaimKind {
    pub(crate) const ALL: [ClaimKind; 5] = [
        ClaimKind::InpatientInstitutional,
        ClaimKind::OutpatientInstitutional,
        ClaimKind::ProfessionalNonClinician,
        ClaimKind::Oral,
        ClaimKind::Pharmacy,
    ];

    /// The profile name under the CARIN StructureDefinition base URL.
    pub(crate) const fn profile(self) -> &'static str {
        match self {
            ClaimKind::InpatientInstitutional => {
                "C4BB-ExplanationOfBenefit-Inpatient-Institutional"
            }
            ClaimKind::OutpatientInstitutional => {
                "C4BB-ExplanationOfBenefit-Outpatient-Institutional"
            }
            ClaimKind::ProfessionalNonClinician => {
                "C4BB-ExplanationOfBenefit-Professional-NonClinician"
            }
            ClaimKind::Oral => "C4BB-ExplanationOfBenefit-Oral",
            ClaimKind::Pharmacy => "C4BB-ExplanationOfBenefit-Pharmacy",
        }
    }

    pub(crate) const fn claim_type(self) -> Code {
        match self {
            ClaimKind::InpatientInstitutional | ClaimKind::OutpatientInstitutional => {
                Code::new(CLAIM_TYPE, "institutional", "Institutional")
            }
            ClaimKind::ProfessionalNonClinician => {
                Code::new(CLAIM_TYPE, "professional", "Professional")
            }
            ClaimKind::Oral => Code::new(CLAIM_TYPE, "oral", "Oral"),
            ClaimKind::Pharmacy => Code::new(CLAIM_TYPE, "pharmacy", "Pharmacy"),
        }
    }

    /// CARIN distinguishes institutional claims by subType (from the type of bill).
    pub(crate) const fn sub_type(self) -> Option<Code> {
        match self {
            ClaimKind::InpatientInstitutional => Some(Code::new(
                C4BB_INSTITUTIONAL_SUBTYPE,
                "inpatient",
                "Inpatient",
            )),
            ClaimKind::OutpatientInstitutional => Some(Code::new(
                C4BB_INSTITUTIONAL_SUBTYPE,
                "outpatient",
                "Outpatient",
            )),
            _ => None,
        }
    }

    pub(crate) const fn scenarios(self) -> &'static [Scenario] {
        match self {
            ClaimKind::InpatientInstitutional => catalog::INPATIENT,
            ClaimKind::OutpatientInstitutional => catalog::OUTPATIENT,
            ClaimKind::ProfessionalNonClinician => catalog::PROFESSIONAL,
            ClaimKind::Oral => catalog::ORAL,
            ClaimKind::Pharmacy => catalog::PHARMACY,
        }
    }

    pub(crate) const fn billing_role(self) -> OrgRole {
        match self {
            ClaimKind::InpatientInstitutional | ClaimKind::OutpatientInstitutional => {
                OrgRole::Hospital
            }
            ClaimKind::ProfessionalNonClinician => OrgRole::PhysicianGroup,
            ClaimKind::Oral => OrgRole::DentalPractice,
            ClaimKind::Pharmacy => OrgRole::Pharmacy,
        }
    }

    pub(crate) const fn care_team(self) -> &'static [Role] {
        match self {
            ClaimKind::InpatientInstitutional => &[ATTENDING, OPERATING, REFERRING],
            ClaimKind::OutpatientInstitutional => &[ATTENDING, REFERRING],
            ClaimKind::ProfessionalNonClinician => &[RENDERING, REFERRING, PRIMARY],
            ClaimKind::Oral => &[DENTIST_RENDERING],
            ClaimKind::Pharmacy => &[PRESCRIBING],
        }
    }

    /// The supportingInfo slices each profile defines (Appendix C of our requirements).
    pub(crate) const fn slices(self) -> &'static [Slice] {
        use Slice::*;
        match self {
            ClaimKind::InpatientInstitutional => &[
                ClaimReceivedDate,
                AdmissionPeriod,
                TypeOfBill,
                AdmissionType,
                PointOfOrigin,
                DischargeStatus,
                Drg,
                MedicalRecordNumber,
                PatientAccountNumber,
            ],
            ClaimKind::OutpatientInstitutional => &[
                ClaimReceivedDate,
                TypeOfBill,
                AdmissionType,
                PointOfOrigin,
                DischargeStatus,
                MedicalRecordNumber,
                PatientAccountNumber,
            ],
            ClaimKind::ProfessionalNonClinician | ClaimKind::Oral => &[
                ClaimReceivedDate,
                ServiceFacility,
                MedicalRecordNumber,
                PatientAccountNumber,
            ],
            ClaimKind::Pharmacy => &[
                ClaimReceivedDate,
                DaysSupply,
                DawCode,
                RefillNumber,
                RefillsAuthorized,
                CompoundCode,
                BrandGenericIndicator,
                RxOriginCode,
            ],
        }
    }

    /// The diagnosis type for codes after the principal one.
    pub(crate) const fn secondary_diagnosis_type(self) -> Code {
        match self {
            ClaimKind::InpatientInstitutional | ClaimKind::OutpatientInstitutional => {
                Code::new(C4BB_DIAGNOSIS_TYPE, "other", "Other")
            }
            _ => Code::new(C4BB_DIAGNOSIS_TYPE, "secondary", "Secondary"),
        }
    }

    /// Professional and oral lines carry a CMS place of service (office).
    pub(crate) const fn place_of_service(self) -> Option<Code> {
        match self {
            ClaimKind::ProfessionalNonClinician | ClaimKind::Oral => {
                Some(Code::new(PLACE_OF_SERVICE, "11", "Office"))
            }
            _ => None,
        }
    }

    /// CARIN puts the network status on each line for professional and oral claims,
    /// and in the header for the others.
    pub(crate) const fn line_level_network_status(self) -> bool {
        matches!(self, ClaimKind::ProfessionalNonClinician | ClaimKind::Oral)
    }

    pub(crate) const fn cost_share(self, brand_drug: bool) -> CostShare {
        let (copay, coinsurance_in, coinsurance_out, deductible_applies) = match self {
            ClaimKind::InpatientInstitutional => (dollars(250), 20, 40, true),
            ClaimKind::OutpatientInstitutional => (dollars(100), 20, 40, true),
            ClaimKind::ProfessionalNonClinician => (dollars(25), 0, 40, true),
            ClaimKind::Oral => (0, 20, 50, false),
            ClaimKind::Pharmacy if brand_drug => (dollars(45), 0, 0, false),
            ClaimKind::Pharmacy => (dollars(10), 0, 0, false),
        };
        CostShare {
            copay,
            coinsurance_in,
            coinsurance_out,
            deductible_applies,
        }
    }

    /// Relative frequency in a member's history: prescriptions and office visits
    /// dominate real claim streams, hospital stays are rare.
    pub(crate) const fn weight(self) -> u64 {
        match self {
            ClaimKind::InpatientInstitutional => 4,
            ClaimKind::OutpatientInstitutional => 12,
            ClaimKind::ProfessionalNonClinician => 40,
            ClaimKind::Oral => 12,
            ClaimKind::Pharmacy => 32,
        }
    }
}
