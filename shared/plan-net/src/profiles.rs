//! The nine Plan-Net profiles and the canonical URLs the directory uses.

use fhir::ResourceType;
use serde_json::Value;

/// The Plan-Net server CapabilityStatement our `/directory/metadata` instantiates.
pub const PLAN_NET_CAPABILITY_STATEMENT: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/CapabilityStatement/plan-net";

/// `Organization.type` code that makes an Organization a Network.
pub const NETWORK_TYPE_CODE: &str = "ntwk";
/// The Plan-Net organization type code system (holds `ntwk`, `prvgrp`, `payer`, …).
pub const ORG_TYPE_SYSTEM: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/OrgTypeCS";
/// `PractitionerRole.extension` naming the networks the role is in.
pub const NETWORK_REFERENCE_EXTENSION: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/network-reference";
/// `Organization.extension` naming the areas it serves.
pub const LOCATION_REFERENCE_EXTENSION: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/location-reference";
/// Whether a PractitionerRole (or location) takes new patients.
pub const NEW_PATIENTS_EXTENSION: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients";

/// The nine profiles, Network and Organization both on Organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    Endpoint,
    HealthcareService,
    InsurancePlan,
    Location,
    Network,
    Organization,
    OrganizationAffiliation,
    Practitioner,
    PractitionerRole,
}

impl Profile {
    pub const ALL: [Profile; 9] = [
        Profile::Endpoint,
        Profile::HealthcareService,
        Profile::InsurancePlan,
        Profile::Location,
        Profile::Network,
        Profile::Organization,
        Profile::OrganizationAffiliation,
        Profile::Practitioner,
        Profile::PractitionerRole,
    ];

    pub const fn url(self) -> &'static str {
        match self {
            Profile::Endpoint => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Endpoint"
            }
            Profile::HealthcareService => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-HealthcareService"
            }
            Profile::InsurancePlan => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-InsurancePlan"
            }
            Profile::Location => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Location"
            }
            Profile::Network => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Network"
            }
            Profile::Organization => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Organization"
            }
            Profile::OrganizationAffiliation => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-OrganizationAffiliation"
            }
            Profile::Practitioner => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Practitioner"
            }
            Profile::PractitionerRole => {
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-PractitionerRole"
            }
        }
    }

    pub const fn resource_type(self) -> ResourceType {
        match self {
            Profile::Endpoint => ResourceType::Endpoint,
            Profile::HealthcareService => ResourceType::HealthcareService,
            Profile::InsurancePlan => ResourceType::InsurancePlan,
            Profile::Location => ResourceType::Location,
            Profile::Network | Profile::Organization => ResourceType::Organization,
            Profile::OrganizationAffiliation => ResourceType::OrganizationAffiliation,
            Profile::Practitioner => ResourceType::Practitioner,
            Profile::PractitionerRole => ResourceType::PractitionerRole,
        }
    }

    /// The profiles of one type: the first is the CapabilityStatement's base profile.
    pub fn of_type(resource_type: ResourceType) -> Vec<Profile> {
        Profile::ALL
            .into_iter()
            .filter(|p| p.resource_type() == resource_type)
            .collect()
    }

    /// The profile a directory resource conforms to: an Organization typed `ntwk` is
    /// a Network. `None` for a type that is not in the directory.
    pub fn for_resource(resource_type: ResourceType, resource: &Value) -> Option<Profile> {
        if resource_type == ResourceType::Organization {
            let network = resource
                .get("type")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("coding").and_then(Value::as_array))
                .flatten()
                .any(|c| c.get("code").and_then(Value::as_str) == Some(NETWORK_TYPE_CODE));
            return Some(if network {
                Profile::Network
            } else {
                Profile::Organization
            });
        }
        Profile::ALL
            .into_iter()
            .find(|p| p.resource_type() == resource_type)
    }
}

/// Sets `meta.profile` to the resource's Plan-Net profile, keeping any other meta.
pub fn stamp_profile(resource_type: ResourceType, resource: &mut Value) {
    let Some(profile) = Profile::for_resource(resource_type, resource) else {
        return;
    };
    if let Some(object) = resource.as_object_mut() {
        let meta = object
            .entry("meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("profile".into(), Value::from(vec![profile.url()]));
        }
    }
}
