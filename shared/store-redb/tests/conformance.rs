//! The storage conformance suite, one test per rule, against a fresh redb file each.

use store_redb::{OpenError, RedbStore};

fn open() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        RedbStore::open(dir.path().join("data").join("store.redb")).expect("open redb store");
    (dir, store)
}

/// A fresh redb file per test.
async fn with_store(_test: &str, check: impl AsyncFnOnce(&RedbStore)) {
    let (_dir, store) = open();
    check(&store).await;
}

fhir_store::conformance_tests!(with_store);

#[tokio::test]
async fn data_survives_reopening() {
    use fhir::ResourceType;
    use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    let written = {
        let store = RedbStore::open(&path).expect("open");
        let write = ResourceWrite {
            resource_type: ResourceType::Patient,
            id: "p1".into(),
            resource: serde_json::json!({"resourceType": "Patient"}),
            index: Default::default(),
            deleted: false,
            condition: WriteCondition::Absent,
        };
        store.put(write).await.expect("put")
    };
    let store = RedbStore::open(&path).expect("reopen");
    assert_eq!(
        store.get(ResourceType::Patient, "p1").await.expect("get"),
        Some(written)
    );
}

#[tokio::test]
async fn reopening_purges_expired_key_value_records_only() {
    use fhir_store::KeyValueStore;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.redb");
    let now = fhir_store::kv::unix_now();
    {
        let store = RedbStore::open(&path).expect("open");
        let value = serde_json::json!("v");
        store
            .put("ns", "dead", &value, Some(now - 1))
            .await
            .expect("put");
        store
            .put("ns", "live", &value, Some(now + 3600))
            .await
            .expect("put");
        store.put("ns", "forever", &value, None).await.expect("put");
        assert_eq!(store.purge_expired().expect("purge"), 1);
        store
            .put("ns", "dead-too", &value, Some(now - 1))
            .await
            .expect("put");
    }
    let store = RedbStore::open(&path).expect("reopen");
    assert_eq!(
        store.purge_expired().expect("purge"),
        0,
        "open purged what expired since"
    );
    let listed = store.list("ns", "", 10).await.expect("list");
    let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["forever", "live"]);
    assert_eq!(
        store
            .get("ns", "live")
            .await
            .expect("get")
            .map(|e| e.version),
        Some(1),
        "live records survive reopening"
    );
}

#[test]
fn a_second_open_of_one_file_is_refused_clearly() {
    let (dir, _store) = open();
    let again = RedbStore::open(dir.path().join("data").join("store.redb"));
    assert!(
        matches!(again, Err(OpenError::AlreadyOpen(_))),
        "got {:?}",
        again.err()
    );
}
