//! What the demo generator needs of each CARIN EOB type beyond what [`ClaimKind`]
//! itself says (profile, type, subType): scenarios, care teams, supportingInfo
//! slices, cost sharing and frequency, so a single builder renders all five.

use crate::amounts::dollars;
use crate::catalog::{self, Scenario};
use crate::directory::OrgRole;
use crate::elements::Code;
use fhir::systems::{
    C4BB_CARE_TEAM_ROLE, C4BB_DIAGNOSIS_TYPE, CARE_TEAM_ROLE_HL7, PLACE_OF_SERVICE,
};

pub(crate) use fhir::ClaimKind;

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

/// The demo side of [`ClaimKind`].
pub(crate) trait DemoClaimKind: Copy {
    fn scenarios(self) -> &'static [Scenario];
    fn billing_role(self) -> OrgRole;
    fn care_team(self) -> &'static [Role];
    /// The supportingInfo slices each profile defines (Appendix C of our requirements).
    fn slices(self) -> &'static [Slice];
    /// The diagnosis type for codes after the principal one.
    fn secondary_diagnosis_type(self) -> Code;
    /// Professional and oral lines carry a CMS place of service (office).
    fn place_of_service(self) -> Option<Code>;
    fn cost_share(self, brand_drug: bool) -> CostShare;
    /// Relative frequency in a member's history: prescriptions and office visits
    /// dominate real claim streams, hospital stays are rare.
    fn weight(self) -> u64;
}

impl DemoClaimKind for ClaimKind {
    fn scenarios(self) -> &'static [Scenario] {
        match self {
            ClaimKind::Inpatient => catalog::INPATIENT,
            ClaimKind::Outpatient => catalog::OUTPATIENT,
            ClaimKind::Professional => catalog::PROFESSIONAL,
            ClaimKind::Oral => catalog::ORAL,
            ClaimKind::Pharmacy => catalog::PHARMACY,
        }
    }

    fn billing_role(self) -> OrgRole {
        match self {
            ClaimKind::Inpatient | ClaimKind::Outpatient => OrgRole::Hospital,
            ClaimKind::Professional => OrgRole::PhysicianGroup,
            ClaimKind::Oral => OrgRole::DentalPractice,
            ClaimKind::Pharmacy => OrgRole::Pharmacy,
        }
    }

    fn care_team(self) -> &'static [Role] {
        match self {
            ClaimKind::Inpatient => &[ATTENDING, OPERATING, REFERRING],
            ClaimKind::Outpatient => &[ATTENDING, REFERRING],
            ClaimKind::Professional => &[RENDERING, REFERRING, PRIMARY],
            ClaimKind::Oral => &[DENTIST_RENDERING],
            ClaimKind::Pharmacy => &[PRESCRIBING],
        }
    }

    /// The supportingInfo slices each profile defines (Appendix C of our requirements).
    fn slices(self) -> &'static [Slice] {
        use Slice::*;
        match self {
            ClaimKind::Inpatient => &[
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
            ClaimKind::Outpatient => &[
                ClaimReceivedDate,
                TypeOfBill,
                AdmissionType,
                PointOfOrigin,
                DischargeStatus,
                MedicalRecordNumber,
                PatientAccountNumber,
            ],
            ClaimKind::Professional | ClaimKind::Oral => &[
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
    fn secondary_diagnosis_type(self) -> Code {
        match self {
            ClaimKind::Inpatient | ClaimKind::Outpatient => {
                Code::new(C4BB_DIAGNOSIS_TYPE, "other", "Other")
            }
            _ => Code::new(C4BB_DIAGNOSIS_TYPE, "secondary", "Secondary"),
        }
    }

    /// Professional and oral lines carry a CMS place of service (office).
    fn place_of_service(self) -> Option<Code> {
        match self {
            ClaimKind::Professional | ClaimKind::Oral => {
                Some(Code::new(PLACE_OF_SERVICE, "11", "Office"))
            }
            _ => None,
        }
    }

    fn cost_share(self, brand_drug: bool) -> CostShare {
        let (copay, coinsurance_in, coinsurance_out, deductible_applies) = match self {
            ClaimKind::Inpatient => (dollars(250), 20, 40, true),
            ClaimKind::Outpatient => (dollars(100), 20, 40, true),
            ClaimKind::Professional => (dollars(25), 0, 40, true),
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
    fn weight(self) -> u64 {
        match self {
            ClaimKind::Inpatient => 4,
            ClaimKind::Outpatient => 12,
            ClaimKind::Professional => 40,
            ClaimKind::Oral => 12,
            ClaimKind::Pharmacy => 32,
        }
    }
}
