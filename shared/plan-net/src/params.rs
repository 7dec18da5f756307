//! The directory's search parameters, includes and revincludes, per type.
//!
//! One table per type, straight from the Plan-Net server CapabilityStatement (all
//! SHALL), plus `near` on Location. Parsing accepts exactly these names, the index
//! extracts exactly these values, and `/directory/metadata` lists exactly these, so
//! what is advertised is what is evaluated.

use fhir::ResourceType;
use fhir::ResourceType::{
    Endpoint, HealthcareService, InsurancePlan, Location, Organization, OrganizationAffiliation,
    Practitioner, PractitionerRole,
};

use crate::profiles::{LOCATION_REFERENCE_EXTENSION, NETWORK_REFERENCE_EXTENSION};

/// The kinds of directory search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `_id`.
    Id,
    /// `_lastUpdated`.
    LastUpdated,
    Token,
    String,
    Reference,
    /// `near` (`lat|long|distance|unit`), a FHIR `special` parameter.
    Near,
}

impl Kind {
    /// The SearchParameter / CapabilityStatement type code.
    pub const fn code(self) -> &'static str {
        match self {
            Kind::Id | Kind::Token => "token",
            Kind::LastUpdated => "date",
            Kind::String => "string",
            Kind::Reference => "reference",
            Kind::Near => "special",
        }
    }
}

/// Where a parameter's values sit in the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Resource id or meta (`_id`, `_lastUpdated`).
    Meta,
    /// Every value at this path (arrays flattened at each step).
    Path(&'static [&'static str]),
    /// `valueReference` of the extensions with this URL.
    Extension(&'static str),
}

/// One directory search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub source: Source,
    /// Canonical URL of its SearchParameter.
    pub definition: &'static str,
    pub documentation: &'static str,
    /// Reference parameters: the types they point to (the first is the default type
    /// of a bare id).
    pub targets: &'static [ResourceType],
    /// Reference parameters: the parameters of the target that may be chained
    /// (`location.address-city=`), from the SearchParameter's `chain` list.
    pub chains: &'static [&'static str],
}

/// One `_include` (`Source:param`) or `_revinclude` (`Source:param` where the source
/// points to the searched type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    pub source: ResourceType,
    pub param: &'static str,
}

macro_rules! pn {
    ($id:literal) => {
        concat!(
            "http://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter/",
            $id
        )
    };
}

const fn param(
    name: &'static str,
    kind: Kind,
    source: Source,
    definition: &'static str,
    documentation: &'static str,
) -> Param {
    Param {
        name,
        kind,
        source,
        definition,
        documentation,
        targets: &[],
        chains: &[],
    }
}

const fn reference(
    name: &'static str,
    source: Source,
    definition: &'static str,
    targets: &'static [ResourceType],
    chains: &'static [&'static str],
) -> Param {
    Param {
        name,
        kind: Kind::Reference,
        source,
        definition,
        documentation: "A reference: `id`, `Type/id` or an absolute URL; chainable as `param.chained=`.",
        targets,
        chains,
    }
}

const fn path(p: &'static [&'static str]) -> Source {
    Source::Path(p)
}

const ID: Param = param(
    "_id",
    Kind::Id,
    Source::Meta,
    "http://hl7.org/fhir/SearchParameter/Resource-id",
    "Logical id. Comma-separated ids match any of them.",
);
const LAST_UPDATED: Param = param(
    "_lastUpdated",
    Kind::LastUpdated,
    Source::Meta,
    "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    "When the resource last changed. Prefixes eq, ne, gt, lt, ge, le, sa, eb, ap.",
);

const STRING_DOC: &str = "Starts-with, ignoring case and accents; `:exact`, `:contains`.";
const TOKEN_DOC: &str =
    "`code`, `system|code`, `|code` or `system|`; `:text` searches the display text.";

/// What `location.` may chain to (Plan-Net's location SearchParameters).
const LOCATION_CHAINS: &[&str] = &[
    "address",
    "address-postalcode",
    "address-city",
    "address-state",
    "organization",
    "type",
    "near",
];
const ORGANIZATION_CHAINS: &[&str] = &["name", "address", "partof", "type"];
const SERVICE_CHAINS: &[&str] = &["service-category", "organization", "location"];
const ENDPOINT_CHAINS: &[&str] = &["organization"];

const ENDPOINT: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "organization",
        path(&["managingOrganization"]),
        pn!("endpoint-organization"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
];

const HEALTHCARE_SERVICE: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "location",
        path(&["location"]),
        pn!("healthcareservice-location"),
        &[Location],
        LOCATION_CHAINS,
    ),
    reference(
        "coverage-area",
        path(&["coverageArea"]),
        pn!("healthcareservice-coverage-area"),
        &[Location],
        LOCATION_CHAINS,
    ),
    reference(
        "organization",
        path(&["providedBy"]),
        pn!("healthcareservice-organization"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
    reference(
        "endpoint",
        path(&["endpoint"]),
        pn!("healthcareservice-endpoint"),
        &[Endpoint],
        ENDPOINT_CHAINS,
    ),
    param(
        "name",
        Kind::String,
        path(&["name"]),
        pn!("healthcareservice-name"),
        STRING_DOC,
    ),
    param(
        "service-category",
        Kind::Token,
        path(&["category"]),
        pn!("healthcareservice-service-category"),
        TOKEN_DOC,
    ),
    param(
        "service-type",
        Kind::Token,
        path(&["type"]),
        pn!("healthcareservice-service-type"),
        TOKEN_DOC,
    ),
    param(
        "specialty",
        Kind::Token,
        path(&["specialty"]),
        pn!("healthcareservice-specialty"),
        TOKEN_DOC,
    ),
];

const INSURANCE_PLAN: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "administered-by",
        path(&["administeredBy"]),
        pn!("insuranceplan-administered-by"),
        &[Organization],
        &["name", "partof"],
    ),
    reference(
        "owned-by",
        path(&["ownedBy"]),
        pn!("insuranceplan-owned-by"),
        &[Organization],
        &["name", "partof"],
    ),
    reference(
        "coverage-area",
        path(&["coverageArea"]),
        pn!("insuranceplan-coverage-area"),
        &[Location],
        LOCATION_CHAINS,
    ),
    param(
        "name",
        Kind::String,
        path(&["name"]),
        pn!("insuranceplan-name"),
        STRING_DOC,
    ),
    param(
        "plan-type",
        Kind::Token,
        path(&["plan", "type"]),
        pn!("insuranceplan-plan-type"),
        TOKEN_DOC,
    ),
    param(
        "identifier",
        Kind::Token,
        path(&["identifier"]),
        pn!("insuranceplan-identifier"),
        TOKEN_DOC,
    ),
    param(
        "type",
        Kind::Token,
        path(&["type"]),
        pn!("insuranceplan-type"),
        TOKEN_DOC,
    ),
];

const LOCATION: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "partof",
        path(&["partOf"]),
        pn!("location-partof"),
        &[Location],
        &["type", "address", "organization"],
    ),
    reference(
        "organization",
        path(&["managingOrganization"]),
        pn!("location-organization"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
    reference(
        "endpoint",
        path(&["endpoint"]),
        pn!("location-endpoint"),
        &[Endpoint],
        ENDPOINT_CHAINS,
    ),
    param(
        "address-city",
        Kind::String,
        path(&["address", "city"]),
        pn!("location-address-city"),
        STRING_DOC,
    ),
    param(
        "address-state",
        Kind::String,
        path(&["address", "state"]),
        pn!("location-address-state"),
        STRING_DOC,
    ),
    param(
        "address-postalcode",
        Kind::String,
        path(&["address", "postalCode"]),
        pn!("location-address-postalcode"),
        STRING_DOC,
    ),
    param(
        "address",
        Kind::String,
        path(&["address"]),
        pn!("location-address"),
        "Any part of the address. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    ),
    param(
        "type",
        Kind::Token,
        path(&["type"]),
        pn!("location-type"),
        TOKEN_DOC,
    ),
    param(
        "near",
        Kind::Near,
        path(&["position"]),
        "http://hl7.org/fhir/SearchParameter/Location-near",
        "`latitude|longitude|distance|unit` (unit km, mi, [mi_i] or m; distance defaults to 10 km, at most 300 km). Nearest first.",
    ),
];

const ORGANIZATION: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "partof",
        path(&["partOf"]),
        pn!("organization-partof"),
        &[Organization],
        &["name", "address", "type"],
    ),
    reference(
        "endpoint",
        path(&["endpoint"]),
        pn!("organization-endpoint"),
        &[Endpoint],
        ENDPOINT_CHAINS,
    ),
    param(
        "address",
        Kind::String,
        path(&["address"]),
        pn!("organization-address"),
        "Any part of the address. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    ),
    param(
        "name",
        Kind::String,
        path(&["name"]),
        pn!("organization-name"),
        STRING_DOC,
    ),
    param(
        "type",
        Kind::Token,
        path(&["type"]),
        pn!("organization-type"),
        TOKEN_DOC,
    ),
    reference(
        "coverage-area",
        Source::Extension(LOCATION_REFERENCE_EXTENSION),
        pn!("organization-coverage-area"),
        &[Location],
        LOCATION_CHAINS,
    ),
];

const ORGANIZATION_AFFILIATION: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "primary-organization",
        path(&["organization"]),
        pn!("organizationaffiliation-primary-organization"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
    reference(
        "participating-organization",
        path(&["participatingOrganization"]),
        pn!("organizationaffiliation-participating-organization"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
    reference(
        "location",
        path(&["location"]),
        pn!("organizationaffiliation-location"),
        &[Location],
        LOCATION_CHAINS,
    ),
    reference(
        "service",
        path(&["healthcareService"]),
        pn!("organizationaffiliation-service"),
        &[HealthcareService],
        SERVICE_CHAINS,
    ),
    reference(
        "network",
        path(&["network"]),
        pn!("organizationaffiliation-network"),
        &[Organization],
        &["name", "partof"],
    ),
    reference(
        "endpoint",
        path(&["endpoint"]),
        pn!("organizationaffiliation-endpoint"),
        &[Endpoint],
        ENDPOINT_CHAINS,
    ),
    param(
        "role",
        Kind::Token,
        path(&["code"]),
        pn!("organizationaffiliation-role"),
        TOKEN_DOC,
    ),
    param(
        "specialty",
        Kind::Token,
        path(&["specialty"]),
        pn!("organizationaffiliation-specialty"),
        TOKEN_DOC,
    ),
];

const PRACTITIONER: &[Param] = &[
    ID,
    LAST_UPDATED,
    param(
        "name",
        Kind::String,
        path(&["name"]),
        pn!("practitioner-name"),
        "Any part of a name. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    ),
    param(
        "family",
        Kind::String,
        path(&["name", "family"]),
        pn!("practitioner-family-name"),
        STRING_DOC,
    ),
    param(
        "given",
        Kind::String,
        path(&["name", "given"]),
        pn!("practitioner-given-name"),
        STRING_DOC,
    ),
];

const PRACTITIONER_ROLE: &[Param] = &[
    ID,
    LAST_UPDATED,
    reference(
        "practitioner",
        path(&["practitioner"]),
        pn!("practitionerrole-practitioner"),
        &[Practitioner],
        &["name", "family", "given"],
    ),
    reference(
        "organization",
        path(&["organization"]),
        pn!("practitionerrole-organization"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
    reference(
        "location",
        path(&["location"]),
        pn!("practitionerrole-location"),
        &[Location],
        LOCATION_CHAINS,
    ),
    reference(
        "service",
        path(&["healthcareService"]),
        pn!("practitionerrole-service"),
        &[HealthcareService],
        SERVICE_CHAINS,
    ),
    reference(
        "network",
        Source::Extension(NETWORK_REFERENCE_EXTENSION),
        pn!("practitionerrole-network"),
        &[Organization],
        ORGANIZATION_CHAINS,
    ),
    reference(
        "endpoint",
        path(&["endpoint"]),
        pn!("practitionerrole-endpoint"),
        &[Endpoint],
        ENDPOINT_CHAINS,
    ),
    param(
        "role",
        Kind::Token,
        path(&["code"]),
        pn!("practitionerrole-role"),
        TOKEN_DOC,
    ),
    param(
        "specialty",
        Kind::Token,
        path(&["specialty"]),
        pn!("practitionerrole-specialty"),
        TOKEN_DOC,
    ),
];

/// The search parameters of a directory type, in CapabilityStatement order; empty
/// for types the directory does not hold.
pub fn params(resource_type: ResourceType) -> &'static [Param] {
    match resource_type {
        Endpoint => ENDPOINT,
        HealthcareService => HEALTHCARE_SERVICE,
        InsurancePlan => INSURANCE_PLAN,
        Location => LOCATION,
        Organization => ORGANIZATION,
        OrganizationAffiliation => ORGANIZATION_AFFILIATION,
        Practitioner => PRACTITIONER,
        PractitionerRole => PRACTITIONER_ROLE,
        _ => &[],
    }
}

pub fn param_of(resource_type: ResourceType, name: &str) -> Option<&'static Param> {
    params(resource_type).iter().find(|p| p.name == name)
}

/// The `_include`s listed for a type (its own reference parameters).
pub fn includes(resource_type: ResourceType) -> &'static [Include] {
    match resource_type {
        Endpoint => &[Include {
            source: Endpoint,
            param: "organization",
        }],
        HealthcareService => &[
            Include {
                source: HealthcareService,
                param: "location",
            },
            Include {
                source: HealthcareService,
                param: "coverage-area",
            },
            Include {
                source: HealthcareService,
                param: "organization",
            },
            Include {
                source: HealthcareService,
                param: "endpoint",
            },
        ],
        InsurancePlan => &[
            Include {
                source: InsurancePlan,
                param: "administered-by",
            },
            Include {
                source: InsurancePlan,
                param: "owned-by",
            },
            Include {
                source: InsurancePlan,
                param: "coverage-area",
            },
        ],
        Location => &[
            Include {
                source: Location,
                param: "endpoint",
            },
            Include {
                source: Location,
                param: "organization",
            },
            Include {
                source: Location,
                param: "partof",
            },
        ],
        Organization => &[
            Include {
                source: Organization,
                param: "partof",
            },
            Include {
                source: Organization,
                param: "endpoint",
            },
            Include {
                source: Organization,
                param: "coverage-area",
            },
        ],
        OrganizationAffiliation => &[
            Include {
                source: OrganizationAffiliation,
                param: "primary-organization",
            },
            Include {
                source: OrganizationAffiliation,
                param: "participating-organization",
            },
            Include {
                source: OrganizationAffiliation,
                param: "location",
            },
            Include {
                source: OrganizationAffiliation,
                param: "service",
            },
            Include {
                source: OrganizationAffiliation,
                param: "endpoint",
            },
            Include {
                source: OrganizationAffiliation,
                param: "network",
            },
        ],
        PractitionerRole => &[
            Include {
                source: PractitionerRole,
                param: "practitioner",
            },
            Include {
                source: PractitionerRole,
                param: "organization",
            },
            Include {
                source: PractitionerRole,
                param: "location",
            },
            Include {
                source: PractitionerRole,
                param: "service",
            },
            Include {
                source: PractitionerRole,
                param: "network",
            },
            Include {
                source: PractitionerRole,
                param: "endpoint",
            },
        ],
        _ => &[],
    }
}

/// The `_revinclude`s listed for a type: resources that point to it.
pub fn revincludes(resource_type: ResourceType) -> &'static [Include] {
    match resource_type {
        HealthcareService => &[
            Include {
                source: PractitionerRole,
                param: "service",
            },
            Include {
                source: OrganizationAffiliation,
                param: "service",
            },
        ],
        Location => &[
            Include {
                source: HealthcareService,
                param: "location",
            },
            Include {
                source: InsurancePlan,
                param: "coverage-area",
            },
            Include {
                source: OrganizationAffiliation,
                param: "location",
            },
            Include {
                source: PractitionerRole,
                param: "location",
            },
        ],
        Organization => &[
            Include {
                source: Endpoint,
                param: "organization",
            },
            Include {
                source: HealthcareService,
                param: "organization",
            },
            Include {
                source: InsurancePlan,
                param: "administered-by",
            },
            Include {
                source: InsurancePlan,
                param: "owned-by",
            },
            Include {
                source: OrganizationAffiliation,
                param: "primary-organization",
            },
            Include {
                source: PractitionerRole,
                param: "organization",
            },
            Include {
                source: PractitionerRole,
                param: "network",
            },
            Include {
                source: OrganizationAffiliation,
                param: "participating-organization",
            },
        ],
        Practitioner => &[Include {
            source: PractitionerRole,
            param: "practitioner",
        }],
        _ => &[],
    }
}

/// Every `(source, param)` whose references may point at `target`: what `_has`
/// accepts (any reference parameter of a directory type that targets `target`).
pub fn referring_param(
    source: ResourceType,
    param: &str,
    target: ResourceType,
) -> Option<&'static Param> {
    param_of(source, param).filter(|p| p.kind == Kind::Reference && p.targets.contains(&target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_net_type_has_id_and_last_updated_and_only_known_chains() {
        for t in ResourceType::PLAN_NET {
            assert!(param_of(t, "_id").is_some(), "{t}");
            assert!(param_of(t, "_lastUpdated").is_some(), "{t}");
            for p in params(t) {
                for chain in p.chains {
                    let target = p.targets[0];
                    assert!(
                        param_of(target, chain).is_some(),
                        "{t}.{}.{chain} names no {target} parameter",
                        p.name
                    );
                }
            }
        }
    }

    #[test]
    fn includes_and_revincludes_name_reference_parameters() {
        for t in ResourceType::PLAN_NET {
            for i in includes(t) {
                assert_eq!(
                    param_of(i.source, i.param).map(|p| p.kind),
                    Some(Kind::Reference)
                );
            }
            for r in revincludes(t) {
                assert!(
                    referring_param(r.source, r.param, t).is_some(),
                    "{t} <- {r:?}"
                );
            }
        }
    }

    #[test]
    fn practitioner_role_has_every_shall_parameter() {
        let names: Vec<_> = params(PractitionerRole).iter().map(|p| p.name).collect();
        for n in [
            "practitioner",
            "organization",
            "location",
            "service",
            "network",
            "endpoint",
            "role",
            "specialty",
            "_id",
            "_lastUpdated",
        ] {
            assert!(names.contains(&n), "{n}");
        }
    }
}
