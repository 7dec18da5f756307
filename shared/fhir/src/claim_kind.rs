//! The five CARIN ExplanationOfBenefit profiles a claim can have. The X12 mapper and
//! the demo generator each ask it what a profile is; what only one of them needs
//! (type-of-bill rules, demo scenarios) stays in that crate, on an extension trait.

use crate::systems::{C4BB_INSTITUTIONAL_SUBTYPE, CLAIM_TYPE};

/// `(system, code, display)` of a Coding.
pub type CodingParts = (&'static str, &'static str, &'static str);

/// Which CARIN ExplanationOfBenefit profile a claim maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// An institutional claim with an inpatient type of bill.
    Inpatient,
    /// An institutional claim with any other type of bill.
    Outpatient,
    /// C4BB-ExplanationOfBenefit-Professional-NonClinician (837P).
    Professional,
    /// C4BB-ExplanationOfBenefit-Oral (837D).
    Oral,
    /// C4BB-ExplanationOfBenefit-Pharmacy (NCPDP; no X12 transaction carries it).
    Pharmacy,
}

impl ClaimKind {
    pub const ALL: [ClaimKind; 5] = [
        ClaimKind::Inpatient,
        ClaimKind::Outpatient,
        ClaimKind::Professional,
        ClaimKind::Oral,
        ClaimKind::Pharmacy,
    ];

    /// The profile name under the CARIN StructureDefinition base.
    pub const fn profile(self) -> &'static str {
        match self {
            ClaimKind::Inpatient => "C4BB-ExplanationOfBenefit-Inpatient-Institutional",
            ClaimKind::Outpatient => "C4BB-ExplanationOfBenefit-Outpatient-Institutional",
            ClaimKind::Professional => "C4BB-ExplanationOfBenefit-Professional-NonClinician",
            ClaimKind::Oral => "C4BB-ExplanationOfBenefit-Oral",
            ClaimKind::Pharmacy => "C4BB-ExplanationOfBenefit-Pharmacy",
        }
    }

    /// EOB.type.
    pub const fn claim_type(self) -> CodingParts {
        match self {
            ClaimKind::Inpatient | ClaimKind::Outpatient => {
                (CLAIM_TYPE, "institutional", "Institutional")
            }
            ClaimKind::Professional => (CLAIM_TYPE, "professional", "Professional"),
            ClaimKind::Oral => (CLAIM_TYPE, "oral", "Oral"),
            ClaimKind::Pharmacy => (CLAIM_TYPE, "pharmacy", "Pharmacy"),
        }
    }

    /// EOB.subType: CARIN tells institutional claims apart by it.
    pub const fn sub_type(self) -> Option<CodingParts> {
        match self {
            ClaimKind::Inpatient => Some((C4BB_INSTITUTIONAL_SUBTYPE, "inpatient", "Inpatient")),
            ClaimKind::Outpatient => Some((C4BB_INSTITUTIONAL_SUBTYPE, "outpatient", "Outpatient")),
            _ => None,
        }
    }

    /// Recovers the kind from a stored EOB's type and subType codes, so the profile
    /// can be recomputed after a merge (the store hands resources back without meta).
    pub fn from_codes(claim_type: &str, sub_type: Option<&str>) -> Option<ClaimKind> {
        match (claim_type, sub_type) {
            ("professional", _) => Some(ClaimKind::Professional),
            ("oral", _) => Some(ClaimKind::Oral),
            ("pharmacy", _) => Some(ClaimKind::Pharmacy),
            ("institutional", Some("inpatient")) => Some(ClaimKind::Inpatient),
            ("institutional", _) => Some(ClaimKind::Outpatient),
            _ => None,
        }
    }

    pub const fn is_institutional(self) -> bool {
        matches!(self, ClaimKind::Inpatient | ClaimKind::Outpatient)
    }

    /// CARIN keeps `benefitpaymentstatus` on each line for professional and oral
    /// claims, and in the header for the others.
    pub const fn line_level_network_status(self) -> bool {
        matches!(self, ClaimKind::Professional | ClaimKind::Oral)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_eobs_codes_give_back_its_kind() {
        for kind in ClaimKind::ALL {
            let sub_type = kind.sub_type().map(|(_, code, _)| code);
            assert_eq!(
                ClaimKind::from_codes(kind.claim_type().1, sub_type),
                Some(kind)
            );
        }
        assert_eq!(ClaimKind::from_codes("vision", None), None);
    }

    #[test]
    fn only_institutional_claims_have_a_sub_type() {
        for kind in ClaimKind::ALL {
            assert_eq!(
                kind.sub_type().is_some(),
                kind.is_institutional(),
                "{kind:?}"
            );
        }
    }
}
