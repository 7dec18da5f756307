//! The four CARIN EOB profiles an 837 can become, as data: the single EOB
//! builder asks this type everything that differs between them.

use fhir::systems::{
    C4BB_DIAGNOSIS_TYPE, C4BB_INSTITUTIONAL_SUBTYPE, CLAIM_TYPE, DIAGNOSIS_TYPE_HL7,
};

/// Which CARIN ExplanationOfBenefit profile a claim maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// 837P: C4BB-ExplanationOfBenefit-Professional-NonClinician.
    Professional,
    /// 837I with an inpatient type of bill.
    Inpatient,
    /// 837I with any other type of bill.
    Outpatient,
    /// 837D: C4BB-ExplanationOfBenefit-Oral.
    Oral,
}

/// A diagnosis role from an HI qualifier, before the profile decides its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisRole {
    Principal,
    Admitting,
    Other,
    ReasonForVisit,
    ExternalCause,
}

impl ClaimKind {
    /// Inpatient facility codes (CLM05-1, the first two digits of the type of
    /// bill after the leading 0), after the NUBC manual's split as summarised
    /// in the reference: hospital inpatient (11x), inpatient Part B (12x),
    /// swing bed (18x), SNF inpatient (21x, 22x), religious non-medical
    /// inpatient (41x) and intermediate care (65x, 66x). Everything else
    /// (13x/14x outpatient, 3xx home health, 7xx clinics, 8xx specialty…) is
    /// outpatient.
    pub fn institutional(facility_code: &str) -> ClaimKind {
        const INPATIENT: &[&str] = &["11", "12", "18", "21", "22", "41", "65", "66"];
        if INPATIENT.contains(&facility_code) {
            ClaimKind::Inpatient
        } else {
            ClaimKind::Outpatient
        }
    }

    /// The profile name under the CARIN StructureDefinition base.
    pub const fn profile(self) -> &'static str {
        match self {
            ClaimKind::Inpatient => "C4BB-ExplanationOfBenefit-Inpatient-Institutional",
            ClaimKind::Outpatient => "C4BB-ExplanationOfBenefit-Outpatient-Institutional",
            ClaimKind::Professional => "C4BB-ExplanationOfBenefit-Professional-NonClinician",
            ClaimKind::Oral => "C4BB-ExplanationOfBenefit-Oral",
        }
    }

    /// `(system, code, display)` of EOB.type.
    pub const fn claim_type(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ClaimKind::Inpatient | ClaimKind::Outpatient => {
                (CLAIM_TYPE, "institutional", "Institutional")
            }
            ClaimKind::Professional => (CLAIM_TYPE, "professional", "Professional"),
            ClaimKind::Oral => (CLAIM_TYPE, "oral", "Oral"),
        }
    }

    /// EOB.subType: institutional claims only.
    pub const fn sub_type(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            ClaimKind::Inpatient => Some((C4BB_INSTITUTIONAL_SUBTYPE, "inpatient", "Inpatient")),
            ClaimKind::Outpatient => Some((C4BB_INSTITUTIONAL_SUBTYPE, "outpatient", "Outpatient")),
            _ => None,
        }
    }

    /// Recovers the kind from a stored EOB's type and subType codes, so the
    /// profile can be recomputed after a merge (the store hands us resources
    /// without meta).
    pub fn from_codes(claim_type: &str, sub_type: Option<&str>) -> Option<ClaimKind> {
        match (claim_type, sub_type) {
            ("professional", _) => Some(ClaimKind::Professional),
            ("oral", _) => Some(ClaimKind::Oral),
            ("institutional", Some("inpatient")) => Some(ClaimKind::Inpatient),
            ("institutional", _) => Some(ClaimKind::Outpatient),
            _ => None,
        }
    }

    pub const fn is_institutional(self) -> bool {
        matches!(self, ClaimKind::Inpatient | ClaimKind::Outpatient)
    }

    /// CARIN keeps `benefitpaymentstatus` on each line for professional and
    /// oral claims and in the header for institutional ones.
    pub const fn line_level_network_status(self) -> bool {
        matches!(self, ClaimKind::Professional | ClaimKind::Oral)
    }

    /// Diagnosis type coding for a role; `None` when the profile has no such
    /// type (the diagnosis is then recorded as the profile's "other" kind).
    pub const fn diagnosis_type(
        self,
        role: DiagnosisRole,
    ) -> (&'static str, &'static str, &'static str) {
        match (self, role) {
            (_, DiagnosisRole::Principal) => {
                (DIAGNOSIS_TYPE_HL7, "principal", "Principal Diagnosis")
            }
            (ClaimKind::Inpatient, DiagnosisRole::Admitting) => {
                (DIAGNOSIS_TYPE_HL7, "admitting", "Admitting Diagnosis")
            }
            (ClaimKind::Outpatient, DiagnosisRole::ReasonForVisit) => (
                C4BB_DIAGNOSIS_TYPE,
                "patientreasonforvisit",
                "Patient Reason for Visit",
            ),
            (ClaimKind::Inpatient | ClaimKind::Outpatient, DiagnosisRole::ExternalCause) => (
                C4BB_DIAGNOSIS_TYPE,
                "externalcauseofinjury",
                "External Cause of Injury",
            ),
            (ClaimKind::Inpatient | ClaimKind::Outpatient, _) => {
                (C4BB_DIAGNOSIS_TYPE, "other", "Other")
            }
            (ClaimKind::Professional | ClaimKind::Oral, _) => {
                (C4BB_DIAGNOSIS_TYPE, "secondary", "Secondary")
            }
        }
    }

    /// The coverage line an 837 of this kind is billed against.
    pub const fn coverage_line(self) -> &'static str {
        match self {
            ClaimKind::Oral => "dental",
            _ => "medical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_of_bill_decides_inpatient_or_outpatient() {
        assert_eq!(ClaimKind::institutional("11"), ClaimKind::Inpatient);
        assert_eq!(ClaimKind::institutional("21"), ClaimKind::Inpatient);
        assert_eq!(ClaimKind::institutional("13"), ClaimKind::Outpatient);
        assert_eq!(ClaimKind::institutional("14"), ClaimKind::Outpatient);
        assert_eq!(ClaimKind::institutional("83"), ClaimKind::Outpatient);
    }
}
