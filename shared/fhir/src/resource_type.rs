use std::fmt;

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The resource types this server stores and serves.
///
/// The six CARIN Blue Button 2.x resources come first, then the member's own Consent
/// records (the app grants). Adding a type here is the one
/// place that makes it known to routing, storage, search and the CapabilityStatement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceType {
    Patient,
    Coverage,
    ExplanationOfBenefit,
    Organization,
    Practitioner,
    RelatedPerson,
    /// A member's consent to share data with an app: the authorization server's grant
    /// record (`Consent.id` is the grant id). Base R4; CARIN defines no profile.
    Consent,
    /// Where a member's record came from: one per resource received from another plan
    /// (Payer-to-Payer), naming that plan and when. In the member's compartment through
    /// its `Patient` target. US Core's Provenance profile.
    Provenance,
    // The provider directory's own types (Da Vinci PDEX Plan-Net). They live only in
    // the directory's store and are served only under `/directory`; the member API
    // never routes them (they are not in [`ResourceType::ALL`]).
    Endpoint,
    HealthcareService,
    InsurancePlan,
    Location,
    OrganizationAffiliation,
    PractitionerRole,
}

/// A path segment or `resourceType` that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown or unsupported resource type")]
pub struct UnknownResourceType;

impl ResourceType {
    /// Every type, in the order the CapabilityStatement lists them.
    pub const ALL: [ResourceType; 8] = [
        ResourceType::Patient,
        ResourceType::Coverage,
        ResourceType::ExplanationOfBenefit,
        ResourceType::Organization,
        ResourceType::Practitioner,
        ResourceType::RelatedPerson,
        ResourceType::Consent,
        ResourceType::Provenance,
    ];

    /// The provider directory's types (Plan-Net), in CapabilityStatement order.
    /// Organization and Practitioner appear in both lists, but as different profiles in
    /// different stores: the directory's are never the ones members' claims reference.
    pub const PLAN_NET: [ResourceType; 8] = [
        ResourceType::Endpoint,
        ResourceType::HealthcareService,
        ResourceType::InsurancePlan,
        ResourceType::Location,
        ResourceType::Organization,
        ResourceType::OrganizationAffiliation,
        ResourceType::Practitioner,
        ResourceType::PractitionerRole,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceType::Patient => "Patient",
            ResourceType::Coverage => "Coverage",
            ResourceType::ExplanationOfBenefit => "ExplanationOfBenefit",
            ResourceType::Organization => "Organization",
            ResourceType::Practitioner => "Practitioner",
            ResourceType::RelatedPerson => "RelatedPerson",
            ResourceType::Consent => "Consent",
            ResourceType::Provenance => "Provenance",
            ResourceType::Endpoint => "Endpoint",
            ResourceType::HealthcareService => "HealthcareService",
            ResourceType::InsurancePlan => "InsurancePlan",
            ResourceType::Location => "Location",
            ResourceType::OrganizationAffiliation => "OrganizationAffiliation",
            ResourceType::PractitionerRole => "PractitionerRole",
        }
    }

    /// The profiles a server of this type supports: CARIN Blue Button's, plus PDex
    /// Prior Authorization for ExplanationOfBenefit (`use = preauthorization`, from
    /// X12 278). The first entry is the one the CapabilityStatement names as the
    /// resource's base profile.
    pub const fn supported_profiles(self) -> &'static [&'static str] {
        match self {
            ResourceType::Patient => {
                &["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Patient"]
            }
            ResourceType::Coverage => {
                &["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage"]
            }
            ResourceType::ExplanationOfBenefit => &[
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit",
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Inpatient-Institutional",
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Outpatient-Institutional",
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician",
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Oral",
                "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Pharmacy",
                crate::systems::PDEX_PRIOR_AUTHORIZATION,
            ],
            ResourceType::Organization => {
                &["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Organization"]
            }
            ResourceType::Practitioner => {
                &["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Practitioner"]
            }
            ResourceType::RelatedPerson => {
                &["http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-RelatedPerson"]
            }
            // CARIN profiles no Consent: the base R4 definition is the profile.
            ResourceType::Consent => &["http://hl7.org/fhir/StructureDefinition/Consent"],
            ResourceType::Provenance => {
                &["http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"]
            }
            // Directory-only types: no CARIN profile (see `plan-net` for theirs).
            ResourceType::Endpoint
            | ResourceType::HealthcareService
            | ResourceType::InsurancePlan
            | ResourceType::Location
            | ResourceType::OrganizationAffiliation
            | ResourceType::PractitionerRole => &[],
        }
    }

    /// Whether resources of this type belong to one member's patient compartment.
    ///
    /// Organization and Practitioner are directory data: readable with the matching
    /// scope, never owned by a member.
    pub const fn is_member_owned(self) -> bool {
        matches!(
            self,
            ResourceType::Patient
                | ResourceType::Coverage
                | ResourceType::ExplanationOfBenefit
                | ResourceType::RelatedPerson
                | ResourceType::Consent
                | ResourceType::Provenance
        )
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = UnknownResourceType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceType::ALL
            .into_iter()
            .chain(ResourceType::PLAN_NET)
            .find(|t| t.as_str() == s)
            .ok_or(UnknownResourceType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for t in ResourceType::ALL {
            assert_eq!(t.as_str().parse::<ResourceType>(), Ok(t));
        }
        assert_eq!("patient".parse::<ResourceType>(), Err(UnknownResourceType));
        assert_eq!(
            "Observation".parse::<ResourceType>(),
            Err(UnknownResourceType)
        );
    }

    #[test]
    fn directory_types_are_not_member_owned() {
        assert!(ResourceType::ExplanationOfBenefit.is_member_owned());
        assert!(!ResourceType::Practitioner.is_member_owned());
        assert!(!ResourceType::Organization.is_member_owned());
        for t in ResourceType::PLAN_NET {
            assert!(!t.is_member_owned(), "{t}");
            assert_eq!(t.as_str().parse::<ResourceType>(), Ok(t));
        }
    }
}
