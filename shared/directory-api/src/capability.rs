//! `GET /directory/metadata`: the CapabilityStatement, generated from the `plan-net`
//! tables the search evaluates, instantiating the Plan-Net server statement.

use fhir::{FHIR_VERSION, ResourceType};
use plan_net::params::{Kind, includes, params, revincludes};
use plan_net::profiles::{PLAN_NET_CAPABILITY_STATEMENT, Profile};
use serde_json::{Value, json};

use crate::search::{MAX_CANDIDATES, MAX_CHAIN_IDS};
use directory_load::DirectoryStatus;

pub fn capability_statement(
    base_url: &str,
    software_version: &str,
    status: Option<&DirectoryStatus>,
) -> Value {
    let resources: Vec<Value> = ResourceType::PLAN_NET
        .into_iter()
        .map(resource_capability)
        .collect();
    let freshness = match status {
        Some(s) => format!("The directory was last loaded at {}.", s.last_loaded),
        None => "The directory has not been loaded yet.".to_owned(),
    };
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": status.map_or("2026-12-07", |s| s.last_loaded.as_str()),
        "publisher": "Patient Access API",
        "kind": "instance",
        "instantiates": [PLAN_NET_CAPABILITY_STATEMENT],
        "software": {"name": "patient-access provider directory", "version": software_version},
        "implementation": {
            "description": format!("Provider Directory API (Da Vinci PDEX Plan-Net), public: no token needed. {freshness}"),
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "documentation": format!(
                "Forward chains and _has resolve their inner search to at most {MAX_CHAIN_IDS} ids \
                 (more is a 400); a search may consider at most {MAX_CANDIDATES} candidates. \
                 Responses are cacheable (Cache-Control, ETag, 304 on If-None-Match)."
            ),
            "resource": resources,
        }],
    });
    if let Some(s) = status {
        statement["software"]["releaseDate"] = json!(s.last_loaded);
    }
    statement
}

fn resource_capability(resource_type: ResourceType) -> Value {
    let profiles = Profile::of_type(resource_type);
    let search_params: Vec<Value> = params(resource_type)
        .iter()
        .map(|p| {
            let mut documentation = p.documentation.to_owned();
            if p.kind == Kind::Reference && !p.chains.is_empty() {
                documentation.push_str(&format!(" Chains: {}.", p.chains.join(", ")));
            }
            json!({
                "name": p.name,
                "definition": p.definition,
                "type": p.kind.code(),
                "documentation": documentation,
            })
        })
        .collect();
    let mut resource = json!({
        "type": resource_type.as_str(),
        "profile": profiles.first().map(|p| p.url()).unwrap_or_default(),
        "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
        "versioning": "versioned",
        "readHistory": false,
        "updateCreate": false,
        "conditionalRead": "not-supported",
        "referencePolicy": ["literal", "local", "resolves"],
        "searchParam": search_params,
    });
    if profiles.len() > 1 {
        resource["supportedProfile"] = json!(profiles.iter().map(|p| p.url()).collect::<Vec<_>>());
    }
    let inc: Vec<String> = includes(resource_type)
        .iter()
        .map(|i| format!("{}:{}", i.source, i.param))
        .collect();
    if !inc.is_empty() {
        resource["searchInclude"] = json!(inc);
    }
    let rev: Vec<String> = revincludes(resource_type)
        .iter()
        .map(|i| format!("{}:{}", i.source, i.param))
        .collect();
    if !rev.is_empty() {
        resource["searchRevInclude"] = json!(rev);
    }
    resource
}
