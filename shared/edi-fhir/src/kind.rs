//! What the X12 mapping needs to know of a claim's CARIN profile beyond what
//! [`ClaimKind`] itself says: the type-of-bill split, diagnosis types and the
//! coverage line.

use fhir::CodingParts;
use fhir::systems::{C4BB_DIAGNOSIS_TYPE, DIAGNOSIS_TYPE_HL7};

pub use fhir::ClaimKind;

/// A diagnosis role from an HI qualifier, before the profile decides its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisRole {
    Principal,
    Admitting,
    Other,
    ReasonForVisit,
    ExternalCause,
}

/// The X12 side of [`ClaimKind`].
pub trait X12ClaimKind: Sized {
    /// Inpatient or outpatient from the facility code of the type of bill.
    fn institutional(facility_code: &str) -> Self;
    /// The diagnosis type coding for a role.
    fn diagnosis_type(self, role: DiagnosisRole) -> CodingParts;
    /// The coverage line a claim of this kind is billed against.
    fn coverage_line(self) -> &'static str;
}

impl X12ClaimKind for ClaimKind {
    /// Inpatient facility codes (CLM05-1, the first two digits of the type of
    /// bill after the leading 0), after the NUBC manual's split as summarised
    /// in the reference: hospital inpatient (11x), inpatient Part B (12x),
    /// swing bed (18x), SNF inpatient (21x, 22x), religious non-medical
    /// inpatient (41x) and intermediate care (65x, 66x). Everything else
    /// (13x/14x outpatient, 3xx home health, 7xx clinics, 8xx specialty…) is
    /// outpatient.
    fn institutional(facility_code: &str) -> Self {
        const INPATIENT: &[&str] = &["11", "12", "18", "21", "22", "41", "65", "66"];
        if INPATIENT.contains(&facility_code) {
            ClaimKind::Inpatient
        } else {
            ClaimKind::Outpatient
        }
    }

    /// Diagnosis type coding for a role; `None` when the profile has no such
    /// type (the diagnosis is then recorded as the profile's "other" kind).
    fn diagnosis_type(self, role: DiagnosisRole) -> CodingParts {
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
            (ClaimKind::Professional | ClaimKind::Oral | ClaimKind::Pharmacy, _) => {
                (C4BB_DIAGNOSIS_TYPE, "secondary", "Secondary")
            }
        }
    }

    /// The coverage line a claim of this kind is billed against.
    fn coverage_line(self) -> &'static str {
        match self {
            ClaimKind::Oral => "dental",
            ClaimKind::Pharmacy => "pharmacy",
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
