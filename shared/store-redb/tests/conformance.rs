//! The storage conformance suite, one test per rule, against a fresh redb file each.

use fhir_store::conformance;
use store_redb::{OpenError, RedbStore};

fn open() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        RedbStore::open(dir.path().join("data").join("store.redb")).expect("open redb store");
    (dir, store)
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, store) = open();
            conformance::$check(&store).await;
        }
    )*};
}

conformance_tests!(
    put_assigns_versions_and_stamps_meta,
    last_updated_strictly_increases,
    write_conditions_are_enforced,
    racing_conditional_writes_let_exactly_one_win,
    concurrent_update_with_never_loses_an_update,
    tombstones_are_readable_but_leave_every_listing,
    compartments_are_isolated,
    compartment_listing_orders_pages_and_bounds,
    an_update_moves_the_resource_to_the_newest_position,
    type_partition_lists_current_directory_resources_in_order,
    lookup_prefix_returns_current_records_by_term,
    large_incompressible_body_round_trips_byte_identical,
    large_compressible_body_round_trips_byte_identical,
    get_many_returns_existing_current_records_once_in_order,
);

conformance_tests!(
    kv_insert_creates_only_when_absent,
    kv_put_get_and_delete_round_trip,
    kv_replace_needs_the_live_version,
    kv_expired_records_are_invisible_and_reinsertable,
    kv_take_is_single_use_under_concurrency,
    kv_concurrent_increments_sum_exactly,
    kv_list_by_prefix_in_key_order_with_limit,
    kv_invalid_keys_and_values_are_rejected,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_share_one_store() {
    let (_dir, store) = open();
    conformance::run_all(&store).await;
    conformance::run_all_kv(&store).await;
}

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
