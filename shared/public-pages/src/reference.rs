//! The developer portal's reference sections, generated from the code they describe.
//!
//! Resources, profiles, search parameters and includes come from the same tables the
//! CapabilityStatement is generated from ([`fhir_search::search_params`],
//! [`fhir_api::search_includes`], [`ResourceType::supported_profiles`]); error codes come
//! from [`ApiError`] itself; the sandbox members from [`demo_data`], whose ids are the
//! ones the local server's demo (loaded as X12 through the ingest pipeline) stores. So
//! the portal cannot describe a server other than the one that answers.

use fhir::ResourceType;
use fhir_api::ApiError;
use fhir_search::search_params;

/// A piece of documentation text: plain, or a `code` span (written in backticks in
/// the search tables). Kept apart so the template escapes both and wraps only code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPart {
    pub code: bool,
    pub text: &'static str,
}

/// Splits "`a` or `b`" into code and plain parts.
fn text_parts(documentation: &'static str) -> Vec<TextPart> {
    documentation
        .split('`')
        .enumerate()
        .filter(|(_, text)| !text.is_empty())
        .map(|(i, text)| TextPart {
            code: i % 2 == 1,
            text,
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct ParamDoc {
    pub name: &'static str,
    pub kind: &'static str,
    pub documentation: Vec<TextPart>,
}

#[derive(Debug, Clone)]
pub struct ResourceDoc {
    pub name: &'static str,
    /// The first is the base profile; the rest are supported profiles.
    pub profiles: &'static [&'static str],
    pub params: Vec<ParamDoc>,
    pub includes: Vec<String>,
}

/// Every resource type the server serves, in CapabilityStatement order.
pub fn resource_docs() -> Vec<ResourceDoc> {
    ResourceType::ALL.into_iter().map(resource_doc).collect()
}

fn resource_doc(resource_type: ResourceType) -> ResourceDoc {
    let params = search_params(resource_type)
        .iter()
        .map(|p| ParamDoc {
            name: p.name,
            kind: p.kind.as_str(),
            documentation: text_parts(p.documentation),
        })
        .collect();
    ResourceDoc {
        name: resource_type.as_str(),
        profiles: resource_type.supported_profiles(),
        params,
        includes: fhir_api::search_includes(resource_type),
    }
}

/// One row of the error table.
#[derive(Debug, Clone)]
pub struct ErrorDoc {
    pub status: u16,
    pub reason: &'static str,
    /// `OperationOutcome.issue.code`.
    pub issue_code: String,
    pub when: &'static str,
}

/// One example of each client-facing error, with when it happens. The status and the
/// issue code are asked of [`ApiError`], so the table follows the code.
pub fn error_docs(max_body_bytes: usize) -> Vec<ErrorDoc> {
    let examples = [
        (
            ApiError::BadRequest(String::new()),
            "A search parameter or value the server does not support, a malformed date or token, or an expired paging link.",
        ),
        (
            ApiError::Unauthorized {
                www_authenticate: String::new(),
            },
            "No bearer token, or one that is expired, badly signed, for another audience, or whose consent was revoked. The WWW-Authenticate header says which.",
        ),
        (
            ApiError::InsufficientScope {
                resource_type: ResourceType::Patient,
                interaction: "read",
            },
            "The token is valid, but the member did not grant a scope for this resource type or interaction.",
        ),
        (
            ApiError::NotFound(String::new()),
            "No such resource, or it belongs to another member: the two look the same on purpose.",
        ),
        (
            ApiError::MethodNotAllowed {
                method: String::new(),
                allow: "GET",
            },
            "The API is read-only: anything other than GET, HEAD and POST to _search. The Allow header lists what works.",
        ),
        (
            ApiError::NotAcceptable,
            "The Accept header or _format asks for something other than JSON (application/fhir+json or application/json).",
        ),
        (
            ApiError::Gone(String::new()),
            "The resource existed and was deleted (for example a claim that was voided).",
        ),
        (
            ApiError::PayloadTooLarge {
                limit: max_body_bytes,
            },
            "The query string or POST _search body is larger than the limit shown under rate limits.",
        ),
        (
            ApiError::UnsupportedMediaType,
            "A POST _search whose body is not application/x-www-form-urlencoded.",
        ),
    ];
    let mut docs: Vec<ErrorDoc> = examples
        .into_iter()
        .map(|(error, when)| {
            let status = error.status();
            let outcome = error.outcome().to_json();
            ErrorDoc {
                status: status.as_u16(),
                reason: status.canonical_reason().unwrap_or(""),
                issue_code: outcome["issue"][0]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                when,
            }
        })
        .collect();
    docs.sort_by_key(|d| d.status);
    docs
}

/// The OperationOutcome a 404 carries, pretty-printed, as the portal's example.
pub fn example_outcome() -> String {
    let error = ApiError::NotFound("ExplanationOfBenefit/does-not-exist".to_owned());
    serde_json::to_string_pretty(&error.outcome().to_json()).unwrap_or_default()
}

/// An abbreviated searchset Bundle for the portal's search example.
pub fn example_search(base_url: &str, patient_id: &str, eob_id: &str) -> String {
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [
            {"relation": "self", "url": format!("{base_url}/ExplanationOfBenefit?patient={patient_id}&…")},
            {"relation": "next", "url": format!("{base_url}/ExplanationOfBenefit?_cursor=…")},
        ],
        "entry": [
            {
                "fullUrl": format!("{base_url}/ExplanationOfBenefit/{eob_id}"),
                "resource": {"resourceType": "ExplanationOfBenefit", "id": eob_id, "…": "…"},
                "search": {"mode": "match"},
            },
            {
                "fullUrl": format!("{base_url}/Organization/…"),
                "resource": {"resourceType": "Organization", "…": "…"},
                "search": {"mode": "include"},
            },
        ],
    });
    serde_json::to_string_pretty(&bundle).unwrap_or_default()
}

/// A synthetic member of the sandbox, with the facts sign-in asks for.
#[derive(Debug, Clone)]
pub struct SandboxMember {
    pub patient_id: String,
    pub name: String,
    pub member_id: String,
    pub birth_date: String,
    pub email: String,
    pub postal_code: String,
}

/// What the sandbox holds: its members and one of their claims, for the examples.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub members: Vec<SandboxMember>,
    /// The first member's Patient resource, abbreviated, for the read example.
    pub example_patient: String,
    /// An EOB id of the first member, for the search example.
    pub example_eob_id: String,
}

impl Sandbox {
    /// The demo `patient-access serve` loads on first start (the same default config;
    /// it loads it as X12, and [`demo_data`] gives every resource the id that path
    /// gives it), so the ids and sign-in facts printed here work against a fresh local
    /// server.
    pub fn from_demo_data() -> Sandbox {
        let data = demo_data::generate(&demo_data::DemoConfig::default());
        let members: Vec<SandboxMember> = data
            .members
            .iter()
            .map(|m| SandboxMember {
                patient_id: m.patient_id.clone(),
                name: format!("{} {}", m.given, m.family),
                member_id: m.member_id.clone(),
                birth_date: m.birth_date.clone(),
                email: m.email.clone(),
                postal_code: m.postal_code.clone(),
            })
            .collect();
        let first = members
            .first()
            .map(|m| m.patient_id.clone())
            .unwrap_or_default();
        let example_patient = data
            .resources
            .iter()
            .find(|(t, id, _)| *t == ResourceType::Patient && *id == first)
            .map(|(_, _, body)| abbreviate(body, PATIENT_EXAMPLE_KEYS))
            .unwrap_or_default();
        let eobs = || {
            data.resources.iter().filter(|(t, _, body)| {
                *t == ResourceType::ExplanationOfBenefit && references_patient(body, &first)
            })
        };
        // One the example search finds: served on or after 2024, not since replaced.
        let example_eob_id = eobs()
            .find(|(_, _, body)| {
                body["billablePeriod"]["end"]
                    .as_str()
                    .is_some_and(|end| end >= "2024-01-01")
                    && !replaced(body)
            })
            .or_else(|| eobs().next())
            .map(|(_, id, _)| id.clone())
            .unwrap_or_default();
        Sandbox {
            members,
            example_patient,
            example_eob_id,
        }
    }
}

/// The elements of the Patient the read example keeps.
const PATIENT_EXAMPLE_KEYS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "identifier",
    "name",
    "gender",
    "birthDate",
];

fn references_patient(body: &serde_json::Value, patient_id: &str) -> bool {
    body["patient"]["reference"].as_str() == Some(&format!("Patient/{patient_id}"))
}

/// An EOB an adjusted claim replaced (the server shows it cancelled).
fn replaced(body: &serde_json::Value) -> bool {
    body["related"].as_array().is_some_and(|related| {
        related
            .iter()
            .any(|r| r["relationship"]["coding"][0]["code"] == "replacedby")
    })
}

/// The resource with only `keys`, pretty-printed, and a marker that more was left out.
fn abbreviate(body: &serde_json::Value, keys: &[&str]) -> String {
    let mut short = serde_json::Map::new();
    for key in keys {
        if let Some(value) = body.get(*key) {
            short.insert((*key).to_owned(), value.clone());
        }
    }
    short.insert(
        "…".to_owned(),
        serde_json::Value::String("more elements".to_owned()),
    );
    serde_json::to_string_pretty(&serde_json::Value::Object(short)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_parts() {
        let parts = text_parts("Claim type, e.g. `pharmacy` or `a|b`.");
        let code: Vec<&str> = parts.iter().filter(|p| p.code).map(|p| p.text).collect();
        assert_eq!(code, ["pharmacy", "a|b"]);
        assert_eq!(parts.first().map(|p| p.text), Some("Claim type, e.g. "));
    }

    #[test]
    fn every_error_the_brief_names_is_documented() {
        let statuses: Vec<u16> = error_docs(1024).iter().map(|d| d.status).collect();
        assert_eq!(statuses, [400, 401, 403, 404, 405, 406, 410, 413, 415]);
        assert!(error_docs(1024).iter().all(|d| !d.issue_code.is_empty()));
    }

    #[test]
    fn sandbox_matches_the_demo_data_the_runner_loads() {
        let sandbox = Sandbox::from_demo_data();
        assert_eq!(
            sandbox.members.len(),
            demo_data::DemoConfig::default().members
        );
        assert!(
            sandbox
                .example_patient
                .contains("\"resourceType\": \"Patient\"")
        );
        assert!(!sandbox.example_eob_id.is_empty());
    }
}
