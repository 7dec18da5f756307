//! The search parameters and `_include`s this server implements, per resource type.
//!
//! These tables are the single source of truth: query parsing accepts exactly these
//! names, and the CapabilityStatement and developer portal are generated from them,
//! so what we advertise is what we implement.

use fhir::ResourceType;

/// The FHIR search parameter types we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamKind {
    Token,
    String,
    Date,
    Reference,
}

impl ParamKind {
    /// The `SearchParameter.type` / CapabilityStatement code.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParamKind::Token => "token",
            ParamKind::String => "string",
            ParamKind::Date => "date",
            ParamKind::Reference => "reference",
        }
    }
}

/// One supported search parameter, as the CapabilityStatement lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
    /// FHIRPath of what is indexed (informative; extraction is hand-written).
    pub expression: &'static str,
    /// Canonical URL of the SearchParameter definition.
    pub definition: &'static str,
    pub documentation: &'static str,
}

/// One supported `_include` (`Source:param`) and the types it can bring in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncludeDef {
    pub param: &'static str,
    pub targets: &'static [ResourceType],
}

const ID: SearchParamDef = SearchParamDef {
    name: "_id",
    kind: ParamKind::Token,
    expression: "Resource.id",
    definition: "http://hl7.org/fhir/SearchParameter/Resource-id",
    documentation: "Logical id of the resource. Comma-separated ids match any of them.",
};

const LAST_UPDATED: SearchParamDef = SearchParamDef {
    name: "_lastUpdated",
    kind: ParamKind::Date,
    expression: "Resource.meta.lastUpdated",
    definition: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    documentation: "When the resource version last changed. Prefixes eq, ne, gt, lt, ge, le, sa, eb, ap.",
};

const EOB: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "patient",
        kind: ParamKind::Reference,
        expression: "ExplanationOfBenefit.patient",
        definition: "http://hl7.org/fhir/SearchParameter/clinical-patient",
        documentation: "The member: `X`, `Patient/X` or an absolute URL ending in `Patient/X`.",
    },
    SearchParamDef {
        name: "type",
        kind: ParamKind::Token,
        expression: "ExplanationOfBenefit.type",
        definition: "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-type",
        documentation: "Claim type, e.g. `pharmacy` or `http://terminology.hl7.org/CodeSystem/claim-type|pharmacy`. Codes compare case-sensitively.",
    },
    SearchParamDef {
        name: "identifier",
        kind: ParamKind::Token,
        expression: "ExplanationOfBenefit.identifier",
        definition: "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-identifier",
        documentation: "Business identifier (e.g. the unique claim id): `value`, `system|value` or `|value`.",
    },
    SearchParamDef {
        name: "service-date",
        kind: ParamKind::Date,
        expression: "ExplanationOfBenefit.billablePeriod | ExplanationOfBenefit.item.serviced",
        definition: "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-service-date",
        documentation: "Date of service: billablePeriod, item.servicedDate or item.servicedPeriod, compared as periods.",
    },
    SearchParamDef {
        name: "service-start-date",
        kind: ParamKind::Date,
        expression: "ExplanationOfBenefit.billablePeriod.start | ExplanationOfBenefit.item.serviced.ofType(date) | ExplanationOfBenefit.item.serviced.ofType(Period).start",
        definition: "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-service-start-date",
        documentation: "Start of service: billablePeriod.start, item.servicedDate or item.servicedPeriod.start.",
    },
    SearchParamDef {
        name: "billable-period-start",
        kind: ParamKind::Date,
        expression: "ExplanationOfBenefit.billablePeriod.start",
        definition: "http://hl7.org/fhir/us/carin-bb/SearchParameter/explanationofbenefit-billable-period-start",
        documentation: "Start of the billable period.",
    },
    SearchParamDef {
        name: "use",
        kind: ParamKind::Token,
        expression: "ExplanationOfBenefit.use",
        definition: "http://hl7.org/fhir/us/davinci-pdex/SearchParameter/explanationofbenefit-use",
        documentation: "`claim` (CARIN claims) or `preauthorization` (PDex Prior Authorizations, from X12 278); `http://hl7.org/fhir/claim-use|preauthorization` also works.",
    },
];

const COVERAGE: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "patient",
        kind: ParamKind::Reference,
        expression: "Coverage.beneficiary",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-coverage-patient",
        documentation: "The beneficiary: `X`, `Patient/X` or an absolute URL ending in `Patient/X`.",
    },
];

const PATIENT: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "identifier",
        kind: ParamKind::Token,
        expression: "Patient.identifier",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-identifier",
        documentation: "Member identifier: `value`, `system|value` or `|value`.",
    },
    SearchParamDef {
        name: "name",
        kind: ParamKind::String,
        expression: "Patient.name",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-name",
        documentation: "Any part of a name (text, family, given, prefix, suffix). Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    },
    SearchParamDef {
        name: "family",
        kind: ParamKind::String,
        expression: "Patient.name.family",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-family",
        documentation: "Family name. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    },
    SearchParamDef {
        name: "given",
        kind: ParamKind::String,
        expression: "Patient.name.given",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-given",
        documentation: "Given name. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    },
    SearchParamDef {
        name: "birthdate",
        kind: ParamKind::Date,
        expression: "Patient.birthDate",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-birthdate",
        documentation: "Date of birth (the whole day). Prefixes eq, ne, gt, lt, ge, le, sa, eb, ap.",
    },
    SearchParamDef {
        name: "gender",
        kind: ParamKind::Token,
        expression: "Patient.gender",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-gender",
        documentation: "Administrative gender code: male, female, other, unknown.",
    },
];

const PRACTITIONER: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "identifier",
        kind: ParamKind::Token,
        expression: "Practitioner.identifier",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-practitioner-identifier",
        documentation: "Identifier such as the NPI: `value`, `system|value` or `|value`.",
    },
    SearchParamDef {
        name: "name",
        kind: ParamKind::String,
        expression: "Practitioner.name",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-practitioner-name",
        documentation: "Any part of a name. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    },
];

const ORGANIZATION: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "name",
        kind: ParamKind::String,
        expression: "Organization.name | Organization.alias",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-organization-name",
        documentation: "Name or alias. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    },
    SearchParamDef {
        name: "address",
        kind: ParamKind::String,
        expression: "Organization.address",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-organization-address",
        documentation: "Any part of an address (text, line, city, district, state, postalCode, country).",
    },
];

const RELATED_PERSON: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "patient",
        kind: ParamKind::Reference,
        expression: "RelatedPerson.patient",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-relatedperson-patient",
        documentation: "The member this person is related to: `X`, `Patient/X` or an absolute URL.",
    },
    SearchParamDef {
        name: "name",
        kind: ParamKind::String,
        expression: "RelatedPerson.name",
        definition: "http://hl7.org/fhir/us/core/SearchParameter/us-core-relatedperson-name",
        documentation: "Any part of a name. Starts-with, ignoring case and accents; `:exact`, `:contains`.",
    },
];

const PROVENANCE: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "patient",
        kind: ParamKind::Reference,
        expression: "Provenance.target.where(resolve() is Patient)",
        definition: "http://hl7.org/fhir/SearchParameter/Provenance-patient",
        documentation: "The member whose record the activity changed: `X`, `Patient/X` or an absolute URL.",
    },
    SearchParamDef {
        name: "target",
        kind: ParamKind::Reference,
        expression: "Provenance.target",
        definition: "http://hl7.org/fhir/SearchParameter/Provenance-target",
        documentation: "The resource it is about, `ExplanationOfBenefit/X` say: where that resource came from.",
    },
    SearchParamDef {
        name: "when",
        kind: ParamKind::Date,
        expression: "Provenance.recorded",
        definition: "http://hl7.org/fhir/SearchParameter/Provenance-recorded",
        documentation: "When it was received (`Provenance.recorded`), with `ge`, `lt` and the other prefixes.",
    },
];

const CONSENT: &[SearchParamDef] = &[
    ID,
    LAST_UPDATED,
    SearchParamDef {
        name: "patient",
        kind: ParamKind::Reference,
        expression: "Consent.patient",
        definition: "http://hl7.org/fhir/SearchParameter/clinical-patient",
        documentation: "The member who gave the consent: `X`, `Patient/X` or an absolute URL.",
    },
    SearchParamDef {
        name: "status",
        kind: ParamKind::Token,
        expression: "Consent.status",
        definition: "http://hl7.org/fhir/SearchParameter/Consent-status",
        documentation: "`proposed`, `active`, `rejected` or `inactive` (revoked).",
    },
];

/// The search parameters implemented for `resource_type`, in CapabilityStatement order.
pub fn search_params(resource_type: ResourceType) -> &'static [SearchParamDef] {
    match resource_type {
        ResourceType::ExplanationOfBenefit => EOB,
        ResourceType::Coverage => COVERAGE,
        ResourceType::Patient => PATIENT,
        ResourceType::Practitioner => PRACTITIONER,
        ResourceType::Organization => ORGANIZATION,
        ResourceType::RelatedPerson => RELATED_PERSON,
        ResourceType::Consent => CONSENT,
        ResourceType::Provenance => PROVENANCE,
        // Directory types are searched by the `plan-net` crate's own tables.
        ResourceType::Endpoint
        | ResourceType::HealthcareService
        | ResourceType::InsurancePlan
        | ResourceType::Location
        | ResourceType::OrganizationAffiliation
        | ResourceType::PractitionerRole => &[],
    }
}

/// Looks a parameter up by name.
pub fn search_param(resource_type: ResourceType, name: &str) -> Option<&'static SearchParamDef> {
    search_params(resource_type).iter().find(|p| p.name == name)
}

use ResourceType::{Coverage, Organization, Patient, Practitioner, RelatedPerson};

const EOB_INCLUDES: &[IncludeDef] = &[
    IncludeDef {
        param: "patient",
        targets: &[Patient],
    },
    IncludeDef {
        param: "provider",
        targets: &[Practitioner, Organization],
    },
    IncludeDef {
        param: "care-team",
        targets: &[Practitioner, Organization],
    },
    IncludeDef {
        param: "coverage",
        targets: &[Coverage],
    },
    IncludeDef {
        param: "insurer",
        targets: &[Organization],
    },
    IncludeDef {
        param: "payee",
        targets: &[Practitioner, Organization, Patient, RelatedPerson],
    },
];

const COVERAGE_INCLUDES: &[IncludeDef] = &[
    IncludeDef {
        param: "payor",
        targets: &[Organization, Patient, RelatedPerson],
    },
    IncludeDef {
        param: "patient",
        targets: &[Patient],
    },
];

const PROVENANCE_INCLUDES: &[IncludeDef] = &[
    IncludeDef {
        param: "target",
        targets: &[
            Patient,
            Coverage,
            ResourceType::ExplanationOfBenefit,
            Organization,
            Practitioner,
        ],
    },
    IncludeDef {
        param: "patient",
        targets: &[Patient],
    },
];

const RELATED_PERSON_INCLUDES: &[IncludeDef] = &[IncludeDef {
    param: "patient",
    targets: &[Patient],
}];

/// The `_include`s supported with `resource_type` as the source (`Source:param`).
/// `Source:*` means all of them.
pub fn includes(resource_type: ResourceType) -> &'static [IncludeDef] {
    match resource_type {
        ResourceType::ExplanationOfBenefit => EOB_INCLUDES,
        ResourceType::Coverage => COVERAGE_INCLUDES,
        ResourceType::RelatedPerson => RELATED_PERSON_INCLUDES,
        ResourceType::Provenance => PROVENANCE_INCLUDES,
        ResourceType::Patient
        | ResourceType::Organization
        | ResourceType::Practitioner
        | ResourceType::Consent
        | ResourceType::Endpoint
        | ResourceType::HealthcareService
        | ResourceType::InsurancePlan
        | ResourceType::Location
        | ResourceType::OrganizationAffiliation
        | ResourceType::PractitionerRole => &[],
    }
}

/// Looks an include up by parameter name.
pub fn include_def(resource_type: ResourceType, param: &str) -> Option<&'static IncludeDef> {
    includes(resource_type).iter().find(|i| i.param == param)
}

/// The index keys a string parameter searches. `name` covers every name part, which
/// the index stores under `name` (text, prefix, suffix), `family` and `given`, so
/// that `family` and `given` need no separate copies.
pub fn string_keys(param: &str) -> &[&str] {
    match param {
        "name" => &["name", "family", "given"],
        "family" => &["family"],
        "given" => &["given"],
        "address" => &["address"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_supports_id_and_last_updated() {
        for t in ResourceType::ALL {
            assert!(search_param(t, "_id").is_some());
            assert!(search_param(t, "_lastUpdated").is_some());
        }
    }

    #[test]
    fn carin_requires_eight_eob_search_parameters_and_pdex_adds_use() {
        let names: Vec<_> = search_params(ResourceType::ExplanationOfBenefit)
            .iter()
            .map(|p| p.name)
            .collect();
        for required in [
            "_id",
            "patient",
            "_lastUpdated",
            "type",
            "identifier",
            "service-date",
            "service-start-date",
            "billable-period-start",
            "use",
        ] {
            assert!(names.contains(&required), "{required}");
        }
        assert_eq!(names.len(), 9);
    }

    #[test]
    fn carin_requires_six_named_eob_includes_and_coverage_payor() {
        let eob: Vec<_> = includes(ResourceType::ExplanationOfBenefit)
            .iter()
            .map(|i| i.param)
            .collect();
        assert_eq!(
            eob,
            [
                "patient",
                "provider",
                "care-team",
                "coverage",
                "insurer",
                "payee"
            ]
        );
        assert!(include_def(ResourceType::Coverage, "payor").is_some());
    }

    #[test]
    fn definitions_are_canonical_urls() {
        for t in ResourceType::ALL {
            for p in search_params(t) {
                assert!(
                    p.definition.starts_with("http://hl7.org/fhir/"),
                    "{}",
                    p.definition
                );
                assert!(!p.documentation.is_empty());
            }
        }
    }
}
