//! `/.well-known/smart-configuration`, `/.well-known/openid-configuration` and the JWKS.
//!
//! Every URL comes from [`fhir_api::OAuthUris::for_issuer`], the same function that
//! fills `/metadata`'s `oauth-uris`, so the two can never disagree.

use fhir::ResourceType;
use fhir_api::OAuthUris;
use serde_json::{Value, json};

/// The SMART capabilities CARIN and SMART App Launch 2.x ask a payer server for.
pub const CAPABILITIES: &[&str] = &[
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "authorize-post",
];

/// The JWKS URL of the issuer.
pub fn jwks_uri(issuer: &str) -> String {
    format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/'))
}

/// Every scope we advertise: context scopes, `patient/*` and each served type, in v1 and v2.
pub fn scopes_supported() -> Vec<String> {
    let mut scopes: Vec<String> = [
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
        "patient/*.read",
        "patient/*.rs",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for t in ResourceType::ALL {
        scopes.push(format!("patient/{t}.read"));
        scopes.push(format!("patient/{t}.rs"));
    }
    // Backend services (Provider Access): read and search, never writes.
    scopes.push("system/*.rs".to_owned());
    scopes.push("system/*.read".to_owned());
    for t in backend_auth::scopes::SYSTEM_TYPES {
        scopes.push(format!("system/{t}.rs"));
    }
    scopes
}

/// The SMART configuration document.
pub fn smart_configuration(issuer: &str) -> Value {
    let uris = OAuthUris::for_issuer(issuer);
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri(issuer),
        "authorization_endpoint": uris.authorize,
        "token_endpoint": uris.token,
        "revocation_endpoint": uris.revoke,
        "introspection_endpoint": uris.introspect,
        "management_endpoint": uris.manage,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": backend_auth::ASSERTION_ALGORITHMS,
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    })
}

/// The OpenID Connect discovery document (Inferno's OpenID group reads it from
/// `{iss}/.well-known/openid-configuration`).
pub fn openid_configuration(issuer: &str) -> Value {
    let uris = OAuthUris::for_issuer(issuer);
    json!({
        "issuer": issuer,
        "authorization_endpoint": uris.authorize,
        "token_endpoint": uris.token,
        "jwks_uri": jwks_uri(issuer),
        "revocation_endpoint": uris.revoke,
        "introspection_endpoint": uris.introspect,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes_supported(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "fhirUser"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir_api::{ApiConfig, capability_statement};

    #[test]
    fn metadata_oauth_uris_equal_the_discovery_urls() {
        let base = "https://fhir.example/r4";
        let mut config = ApiConfig::new(base);
        config.oauth = Some(OAuthUris::for_issuer(base));
        let cs = capability_statement(&config, "test");
        let ext = &cs["rest"][0]["security"]["extension"][0]["extension"];
        let uri = |name: &str| {
            ext.as_array()
                .and_then(|a| a.iter().find(|e| e["url"] == name))
                .map(|e| e["valueUri"].clone())
                .unwrap_or(Value::Null)
        };
        let smart = smart_configuration(base);
        assert_eq!(uri("authorize"), smart["authorization_endpoint"]);
        assert_eq!(uri("token"), smart["token_endpoint"]);
        assert_eq!(uri("revoke"), smart["revocation_endpoint"]);
        assert_eq!(uri("introspect"), smart["introspection_endpoint"]);
        assert_eq!(uri("manage"), smart["management_endpoint"]);
        assert_eq!(smart["code_challenge_methods_supported"], json!(["S256"]));
        let oidc = openid_configuration(base);
        assert_eq!(oidc["issuer"], smart["issuer"]);
        assert_eq!(oidc["jwks_uri"], smart["jwks_uri"]);
    }

    #[test]
    fn carin_scopes_and_capabilities_are_advertised() {
        let smart = smart_configuration("https://x.example");
        let scopes: Vec<&str> = smart["scopes_supported"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for s in [
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
            "patient/*.read",
            "patient/ExplanationOfBenefit.rs",
            "patient/Coverage.read",
            "patient/Consent.rs",
            "patient/RelatedPerson.rs",
        ] {
            assert!(scopes.contains(&s), "{s}");
        }
        // CARIN's eleven, plus backend services for Provider Access.
        assert_eq!(smart["capabilities"].as_array().map(Vec::len), Some(12));
        assert!(
            smart["capabilities"]
                .as_array()
                .unwrap()
                .contains(&json!("client-confidential-asymmetric"))
        );
        assert!(
            smart["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt"))
        );
        assert_eq!(
            smart["token_endpoint_auth_signing_alg_values_supported"],
            json!(["RS384", "ES384"])
        );
        assert!(scopes.contains(&"system/*.rs"));
    }
}
