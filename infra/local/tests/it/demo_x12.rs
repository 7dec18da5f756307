//! The demo loaded the way `serve` loads it: the X12 files through the ingest pipeline,
//! then the FHIR that X12 cannot carry. Every member gets a Patient (with what sign-in
//! asks), Coverage and EOBs of every CARIN type; every id the demo generates names a
//! stored resource and every stored reference resolves; loading again changes nothing;
//! the resources are valid FHIR (the test command validates what lands in
//! FHIR_CAPTURE_DIR).

use std::collections::BTreeSet;
use std::sync::Arc;

use fhir::ResourceType;
use fhir_store::{ListQuery, Partition, ResourceStore};
use patient_access::load_demo;
use serde_json::Value;
use store_redb::RedbStore;

async fn listed(store: &RedbStore, partition: Partition) -> Vec<Value> {
    let page = store
        .list(ListQuery::new(partition, 10_000))
        .await
        .unwrap_or_else(|e| panic!("list: {e}"));
    assert!(!page.more);
    page.entries
        .iter()
        .map(|(_, r)| serde_json::from_str(&r.body).unwrap_or(Value::Null))
        .collect()
}

async fn owned(store: &RedbStore, patient: &str, resource_type: ResourceType) -> Vec<Value> {
    listed(
        store,
        Partition::Compartment {
            patient: patient.to_owned(),
            resource_type,
        },
    )
    .await
}

/// Every `reference` string inside a resource.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                match (key.as_str(), v) {
                    ("reference", Value::String(r)) => out.push(r.clone()),
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_through_x12_with_the_ids_the_demo_generates() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        Arc::new(RedbStore::open(dir.path().join("fhir.redb")).unwrap_or_else(|e| panic!("{e}")));
    let files = dir.path().join("demo");
    let config = demo_data::DemoConfig::default();
    let members = load_demo(Arc::clone(&store), &config, Some(&files))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(members.len(), config.members);
    let demo = demo_data::generate(&config);
    assert_eq!(members, demo.members);

    // The files, their reports and 999s are there to look at.
    for (name, _) in demo_data::x12::files(&config) {
        for suffix in ["", ".json", ".999"] {
            let path = files.join(format!("{name}{suffix}"));
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }

    let mut stored = Vec::new();
    let mut types = BTreeSet::new();
    for member in &members {
        let patient = store
            .get(ResourceType::Patient, &member.patient_id)
            .await
            .ok()
            .flatten();
        let patient = patient.unwrap_or_else(|| panic!("{} has no Patient", member.patient_id));
        let patient: Value = serde_json::from_str(&patient.body).unwrap_or(Value::Null);
        assert_eq!(patient["birthDate"], member.birth_date.as_str());
        assert_eq!(patient["name"][0]["family"], member.family.as_str());
        assert_eq!(patient["identifier"][0]["value"], member.member_id.as_str());
        assert_eq!(
            patient["address"][0]["postalCode"],
            member.postal_code.as_str()
        );
        let email = patient["telecom"]
            .as_array()
            .and_then(|t| t.iter().find(|c| c["system"] == "email"));
        assert_eq!(
            email.map(|c| c["value"].clone()),
            Some(Value::from(member.email.as_str())),
            "{patient}"
        );
        stored.push(patient);
        for resource_type in [
            ResourceType::Coverage,
            ResourceType::ExplanationOfBenefit,
            ResourceType::RelatedPerson,
        ] {
            stored.extend(owned(&store, &member.patient_id, resource_type).await);
        }
        let eobs = owned(
            &store,
            &member.patient_id,
            ResourceType::ExplanationOfBenefit,
        )
        .await;
        for eob in &eobs {
            let kind = eob["type"]["coding"][0]["code"].as_str().unwrap_or("");
            let sub = eob["subType"]["coding"][0]["code"].as_str().unwrap_or("");
            types.insert(format!("{kind}{sub}"));
            assert!(eob.get("payment").is_some(), "unpaid: {eob}");
        }
    }
    for kind in [
        "professional",
        "institutionalinpatient",
        "institutionaloutpatient",
        "oral",
        "pharmacy",
    ] {
        assert!(types.contains(kind), "no {kind} EOB: {types:?}");
    }
    // Adjusted claims: the replaced EOB is cancelled by the 835's reversal.
    assert!(
        stored
            .iter()
            .any(|r| r["resourceType"] == "ExplanationOfBenefit" && r["status"] == "cancelled"),
        "no reversed claim"
    );
    for resource_type in [ResourceType::Organization, ResourceType::Practitioner] {
        stored.extend(listed(&store, Partition::Type(resource_type)).await);
    }
    stored.iter().for_each(crate::support::capture);

    // Ids agree at the source: everything the demo generates is stored under its id.
    for (resource_type, id, _) in &demo.resources {
        let found = store.get(*resource_type, id).await.ok().flatten();
        assert!(found.is_some(), "{resource_type}/{id} is not stored");
    }
    // And nothing stored points nowhere.
    let known: BTreeSet<String> = stored
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?")
            )
        })
        .collect();
    for resource in &stored {
        let mut found = Vec::new();
        references(resource, &mut found);
        for reference in found {
            assert!(
                known.contains(&reference),
                "{}/{} refers to {reference}, which is not stored",
                resource["resourceType"],
                resource["id"]
            );
        }
    }

    let before = owned(
        &store,
        &members[0].patient_id,
        ResourceType::ExplanationOfBenefit,
    )
    .await;
    let again = load_demo(Arc::clone(&store), &config, None)
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
