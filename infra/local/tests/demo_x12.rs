//! The demo data generated as X12 and loaded through the ingest pipeline: every demo
//! member gets a Patient, Coverage and paid EOBs of the professional, institutional
//! and oral kinds; loading again changes nothing; the resources are valid FHIR (the
//! test command validates what lands in FHIR_CAPTURE_DIR).

use std::path::PathBuf;
use std::sync::Arc;

use fhir::ResourceType;
use fhir_store::{ListQuery, Partition, ResourceStore};
use patient_access::load_demo_x12;
use serde_json::Value;

async fn owned(
    store: &store_redb::RedbStore,
    patient: &str,
    resource_type: ResourceType,
) -> Vec<Value> {
    let query = ListQuery::new(
        Partition::Compartment {
            patient: patient.to_owned(),
            resource_type,
        },
        1000,
    );
    let page = store
        .list(query)
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    page.entries
        .iter()
        .map(|(_, r)| serde_json::from_str(&r.body).unwrap_or(Value::Null))
        .collect()
}

fn capture(resource: &Value) {
    let Some(dir) = std::env::var_os("FHIR_CAPTURE_DIR") else {
        return;
    };
    let name = format!(
        "demo-x12-{}-{}.json",
        resource["resourceType"].as_str().unwrap_or("x"),
        resource["id"].as_str().unwrap_or("x")
    );
    let _ = std::fs::write(PathBuf::from(dir).join(name), resource.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_x12_loads_every_member_with_paid_claims_of_every_x12_kind() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(
        store_redb::RedbStore::open(dir.path().join("fhir.redb")).unwrap_or_else(|e| panic!("{e}")),
    );
    let config = demo_data::DemoConfig::default();
    let members = load_demo_x12(Arc::clone(&store), &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(members.len(), config.members);
    let mut types = std::collections::BTreeSet::new();
    for member in &members {
        let patient = store
            .get(ResourceType::Patient, &member.patient_id)
            .await
            .ok()
            .flatten();
        let patient = patient.unwrap_or_else(|| panic!("{} has no Patient", member.patient_id));
        let patient: Value = serde_json::from_str(&patient.body).unwrap_or(Value::Null);
        assert_eq!(patient["birthDate"], member.birth_date.as_str());
        let email = patient["telecom"]
            .as_array()
            .and_then(|t| t.iter().find(|c| c["system"] == "email"));
        assert_eq!(
            email.map(|c| c["value"].clone()),
            Some(Value::from(member.email.as_str())),
            "{patient}"
        );
        capture(&patient);
        let coverages = owned(&store, &member.patient_id, ResourceType::Coverage).await;
        assert!(!coverages.is_empty(), "{}: no Coverage", member.patient_id);
        coverages.iter().for_each(capture);
        let eobs = owned(
            &store,
            &member.patient_id,
            ResourceType::ExplanationOfBenefit,
        )
        .await;
        assert!(
            eobs.len() >= 6,
            "{}: {} EOBs",
            member.patient_id,
            eobs.len()
        );
        for eob in &eobs {
            types.insert(
                eob["type"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            assert!(
                eob.get("payment").is_some() || eob["outcome"] == "complete",
                "unpaid: {eob}"
            );
            capture(eob);
        }
    }
    for kind in ["professional", "institutional", "oral"] {
        assert!(types.contains(kind), "no {kind} EOB: {types:?}");
    }
    let before = owned(
        &store,
        &members[0].patient_id,
        ResourceType::ExplanationOfBenefit,
    )
    .await;
    let again = load_demo_x12(Arc::clone(&store), &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, members);
    let after = owned(
        &store,
        &members[0].patient_id,
        ResourceType::ExplanationOfBenefit,
    )
    .await;
    assert_eq!(before, after, "a second load must change nothing");
}
