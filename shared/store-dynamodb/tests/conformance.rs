//! The storage conformance suite against DynamoDB, served by moto: run through
//! `scripts/with-moto cargo test -p store-dynamodb`.
//!
//! Without `AWS_ENDPOINT_URL` these tests FAIL (we never want them silently skipped in
//! CI), unless `SKIP_AWS_TESTS=1`. Each test creates its own table from
//! `infra/dynamodb-table.json`, so tests run in parallel.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use fhir_store::conformance;
use store_dynamodb::{DynamoStore, create_table};

/// A client for the local endpoint: explicit region, static test credentials and the
/// endpoint, so the SDK never looks at IMDS or ~/.aws. `None` when skipping.
async fn local_client() -> Option<Client> {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ if std::env::var("SKIP_AWS_TESTS").as_deref() == Ok("1") => {
            eprintln!("SKIP_AWS_TESTS=1: skipping a DynamoDB test");
            return None;
        }
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: run the DynamoDB tests through `scripts/with-moto cargo test …`, \
             or set SKIP_AWS_TESTS=1 to skip them deliberately"
        ),
    };
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::standard())
        .load()
        .await;
    Some(Client::new(&config))
}

/// A store on a fresh table named after the test.
async fn fresh_store(test: &str) -> Option<(Client, String, DynamoStore)> {
    let client = local_client().await?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let table = format!(
        "t-{}-{}-{nanos}",
        test.replace('_', "-"),
        std::process::id()
    );
    create_table(&client, &table)
        .await
        .expect("create the test table from infra/dynamodb-table.json");
    let store = DynamoStore::new(client.clone(), table.clone());
    Some((client, table, store))
}

/// Drops the table so moto does not keep megabytes of test bodies.
async fn drop_table(client: &Client, table: &str) {
    let _ = client.delete_table().table_name(table).send().await;
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some((client, table, store)) = fresh_store(stringify!($check)).await else { return };
            conformance::$check(&store).await;
            drop_table(&client, &table).await;
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
async fn all_checks_share_one_table() {
    let Some((client, table, store)) = fresh_store("all").await else {
        return;
    };
    conformance::run_all(&store).await;
    conformance::run_all_kv(&store).await;
    drop_table(&client, &table).await;
}

#[tokio::test]
async fn creating_an_existing_table_is_a_no_op() {
    let Some((client, table, _store)) = fresh_store("twice").await else {
        return;
    };
    create_table(&client, &table)
        .await
        .expect("second create succeeds");
    drop_table(&client, &table).await;
}
