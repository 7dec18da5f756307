//! The storage conformance suite against DynamoDB, served by moto: run through
//! `scripts/with-moto cargo test -p store-dynamodb`.
//!
//! Without `AWS_ENDPOINT_URL` these tests FAIL (we never want them silently skipped in
//! CI), unless `SKIP_AWS_TESTS=1`. Each test creates its own table from
//! `infra/dynamodb-table.json`, so tests run in parallel.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use store_dynamodb::{DynamoStore, create_table};

/// A client for the local endpoint; `None` when skipping.
async fn local_client() -> Option<Client> {
    let config = aws_test_config::local_sdk_config().await?;
    let config = aws_sdk_dynamodb::config::Builder::from(&config)
        .retry_config(RetryConfig::standard())
        .build();
    Some(Client::from_conf(config))
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

/// A fresh table per test, dropped afterwards.
async fn with_store(test: &str, check: impl AsyncFnOnce(&DynamoStore)) {
    let Some((client, table, store)) = fresh_store(test).await else {
        return;
    };
    check(&store).await;
    drop_table(&client, &table).await;
}

fhir_store::conformance_tests!(with_store);

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
