//! `GET /metadata`: the CapabilityStatement, generated from what is implemented.
//!
//! Resource types come from [`ResourceType::ALL`], search parameters and includes from
//! the search crate's own tables, so the statement cannot claim a parameter the
//! server does not evaluate, nor miss one it does.

use fhir::{CARIN_BB_CAPABILITY_STATEMENT, FHIR_VERSION, ResourceType};
use fhir_search::{ParamKind, includes, search_params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiConfig;

/// The OAuth 2.0 endpoints of the authorization server (SMART `oauth-uris`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthUris {
    pub authorize: String,
    pub token: String,
    pub revoke: String,
    pub introspect: String,
    /// Where a member manages connected apps.
    pub manage: String,
}

impl OAuthUris {
    /// The endpoints of the authorization server whose issuer URL is `issuer`.
    ///
    /// The one place these paths are spelled: `/metadata` (here) and the SMART and
    /// OpenID discovery documents (crate `smart-server`) both call it, so the
    /// CapabilityStatement can never advertise other URLs than discovery does.
    pub fn for_issuer(issuer: &str) -> OAuthUris {
        let issuer = issuer.trim_end_matches('/');
        OAuthUris {
            authorize: format!("{issuer}/authorize"),
            token: format!("{issuer}/token"),
            revoke: format!("{issuer}/revoke"),
            introspect: format!("{issuer}/introspect"),
            manage: format!("{issuer}/connected-apps"),
        }
    }
}

pub fn capability_statement(config: &ApiConfig, software_version: &str) -> Value {
    let resources: Vec<Value> = ResourceType::ALL
        .into_iter()
        .map(resource_capability)
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "publisher": "Patient Access API",
        "kind": "instance",
        "instantiates": [CARIN_BB_CAPABILITY_STATEMENT],
        "software": {"name": "patient-access", "version": software_version},
        "implementation": {"description": "CMS Patient Access API (CARIN Blue Button)", "url": config.base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "security": security(config),
            "resource": resources,
            "operation": operations(),
        }],
    })
}

/// The operations for backend clients (Provider Access, Payer-to-Payer), which other
/// functions of the same base URL answer: listed here so that one CapabilityStatement
/// describes the whole API.
fn operations() -> Value {
    let operation = |name: &str, definition: &str| json!({"name": name, "definition": definition});
    json!([
        operation(
            "export",
            "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
        ),
        operation(
            "member-match",
            "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match"
        ),
        operation(
            "everything",
            "http://hl7.org/fhir/OperationDefinition/Patient-everything"
        ),
        operation(
            "bulk-member-match",
            "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/bulk-member-match"
        ),
        operation(
            "davinci-data-export",
            "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/davinci-data-export"
        ),
    ])
}

fn security(config: &ApiConfig) -> Value {
    let mut security = json!({
        "cors": true,
        "service": [{
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR",
            }],
        }],
        "description": "SMART App Launch (standalone, patient context). Bearer tokens are RS256 JWTs; \
            every read, search and _include is limited to the token's patient and scopes.",
    });
    if let Some(oauth) = &config.oauth {
        let uris = [
            ("authorize", &oauth.authorize),
            ("token", &oauth.token),
            ("revoke", &oauth.revoke),
            ("introspect", &oauth.introspect),
            ("manage", &oauth.manage),
        ];
        let extension: Vec<Value> = uris
            .iter()
            .map(|(name, url)| json!({"url": name, "valueUri": url}))
            .collect();
        security["extension"] = json!([{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": extension,
        }]);
    }
    security
}

fn resource_capability(resource_type: ResourceType) -> Value {
    let profiles = resource_type.supported_profiles();
    let params: Vec<Value> = search_params(resource_type)
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "definition": p.definition,
                "type": kind_code(p.kind),
                "documentation": p.documentation,
            })
        })
        .collect();
    let mut resource = json!({
        "type": resource_type.as_str(),
        "profile": profiles.first().copied().unwrap_or_default(),
        "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
        "versioning": "versioned",
        "readHistory": false,
        "updateCreate": false,
        "conditionalRead": "not-supported",
        "referencePolicy": ["literal", "local", "resolves"],
        "searchParam": params,
    });
    if profiles.len() > 1 {
        resource["supportedProfile"] = json!(profiles[1..]);
    }
    let includes = search_includes(resource_type);
    if !includes.is_empty() {
        resource["searchInclude"] = json!(includes);
    }
    resource
}

/// The `_include` values advertised for `resource_type` (`searchInclude`), in order.
///
/// Public so the developer portal lists exactly what `/metadata` does: both call this
/// one function over the search crate's [`includes`] table.
pub fn search_includes(resource_type: ResourceType) -> Vec<String> {
    let mut all: Vec<String> = includes(resource_type)
        .iter()
        .map(|i| format!("{resource_type}:{}", i.param))
        .collect();
    if all.is_empty() {
        return all;
    }
    all.push(format!("{resource_type}:*"));
    if resource_type == ResourceType::ExplanationOfBenefit {
        // Supported as `_include:iterate`, after ExplanationOfBenefit:coverage.
        all.push("Coverage:payor".to_owned());
    }
    all
}

fn kind_code(kind: ParamKind) -> &'static str {
    match kind {
        ParamKind::Token => "token",
        ParamKind::String => "string",
        ParamKind::Date => "date",
        ParamKind::Reference => "reference",
    }
}

/// Answers `GET /metadata` (no token needed, as FHIR and Inferno expect).
pub fn metadata_response(
    config: &ApiConfig,
    request: &http::Request<bytes::Bytes>,
) -> http::Response<bytes::Bytes> {
    let format = crate::format_param(request);
    let flavour = match crate::negotiate::negotiate(format.as_deref(), request.headers()) {
        Ok(flavour) => flavour,
        Err(error) => return crate::error_response(&error, crate::JsonFlavour::Fhir),
    };
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        let error = crate::ApiError::MethodNotAllowed {
            method: request.method().to_string(),
            allow: "GET",
        };
        return crate::error_response(&error, flavour);
    }
    let body = capability_statement(config, env!("CARGO_PKG_VERSION")).to_string();
    crate::json_response(http::StatusCode::OK, bytes::Bytes::from(body), flavour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eob_lists_the_pdex_prior_authorization_profile_and_the_use_parameter() {
        let eob = resource_capability(ResourceType::ExplanationOfBenefit);
        let profiles: Vec<&str> = eob["supportedProfile"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            profiles.contains(&fhir::systems::PDEX_PRIOR_AUTHORIZATION),
            "{profiles:?}"
        );
        let use_param = eob["searchParam"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "use");
        assert_eq!(
            use_param.map(|p| (&p["type"], &p["definition"])),
            Some((
                &Value::from("token"),
                &Value::from(
                    "http://hl7.org/fhir/us/davinci-pdex/SearchParameter/explanationofbenefit-use"
                )
            ))
        );
    }
}
