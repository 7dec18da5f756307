//! Prior authorizations through the API: 278 files ingested into the local
//! store are the member's `ExplanationOfBenefit?use=preauthorization`, with
//! `_include` and version history as for claims, inside the member's
//! compartment only.

use std::sync::Arc;

use edi_ingest::{FileIdentity, Ingestor};
use fhir::ResourceType;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Harness, entry_ids};

const ALL: &str = "patient/*.rs";
/// The subscriber the 278 fixtures name (member id JS00111223333).
const MEMBER: &str = "patient-999996666-JS00111223333";

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/x12/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_members_prior_authorizations_are_searchable_with_includes_and_history() {
    let h = Harness::start();
    let ingestor = Ingestor::new(
        Arc::clone(&h.store),
        patient_access::edi::local_ingest_config(),
    );
    for name in ["278_pended.x12", "278_approved.x12", "278_partial.x12"] {
        let bytes = fixture(name);
        let done = h
            .runtime
            .block_on(ingestor.ingest_bytes(&FileIdentity::content(name, &bytes), bytes.clone()));
        assert!(done.is_ok(), "{name}: {done:?}");
    }
    let token = h.token(MEMBER, ALL);
    let found = h.get(
        "/ExplanationOfBenefit?use=preauthorization&_include=ExplanationOfBenefit:provider",
        Some(&token),
    );
    assert_eq!(found.status, StatusCode::OK, "{}", found.json);
    let matches = entry_ids(&found.json, "match");
    assert_eq!(matches.len(), 2, "{matches:?}");
    assert!(
        entry_ids(&found.json, "include").contains(&"Organization/org-npi-9876543210".to_owned()),
        "{}",
        found.json
    );
    let entries = found.json["entry"].as_array().cloned().unwrap_or_default();
    let approved: Value = entries
        .iter()
        .map(|e| e["resource"].clone())
        .find(|r| r["preAuthRef"][0] == "AUTH7730251")
        .unwrap_or_default();
    assert_eq!(approved["meta"]["versionId"], "2", "pended, then approved");
    assert_eq!(approved["outcome"], "complete");
    let id = approved["id"].as_str().unwrap_or_default();
    let pended = h.get(
        &format!("/ExplanationOfBenefit/{id}/_history/1"),
        Some(&token),
    );
    assert_eq!(pended.json["outcome"], "queued");

    // Claims are not prior authorizations, and another member sees none.
    let claims = h.get("/ExplanationOfBenefit?use=claim", Some(&token));
    assert!(
        entry_ids(&claims.json, "match")
            .iter()
            .all(|m| !m.ends_with(id))
    );
    let other = h.token(h.member(0), ALL);
    let none = h.get("/ExplanationOfBenefit?use=preauthorization", Some(&other));
    assert_eq!(entry_ids(&none.json, "match").len(), 0, "{}", none.json);
    let read = h.get(&format!("/ExplanationOfBenefit/{id}"), Some(&other));
    assert_eq!(read.status, StatusCode::NOT_FOUND);
    assert!(
        h.owned(ResourceType::ExplanationOfBenefit, MEMBER).len() >= 2,
        "in the member's compartment"
    );
}
