//! The usage functions against moto with the real SDK (`scripts/with-moto cargo test
//! -p usage-metrics-fn`): a CloudWatch Logs delivery, exactly as the subscription
//! sends it (gzip, base64), becomes records in a table made from
//! `infra/dynamodb-table.json`; delivering it again counts nothing twice; the report
//! lands in S3 as JSON and CSV. Fails without `AWS_ENDPOINT_URL` unless
//! `SKIP_AWS_TESTS=1`.

use serde_json::{Value, json};
use store_dynamodb::{DynamoStore, create_table};
use usage_metrics_fn::{ReportConfig, aggregate, report};

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{what}-{}-{nanos}", std::process::id())
}

fn audit_line(client: &str, patient: &str, resource_type: &str, status: u16) -> String {
    json!({
        "level": "INFO",
        "fields": {
            "message": "fhir access", "client_id": client, "grant_id": "g-1",
            "patient": patient, "interaction": "search", "resource_type": resource_type,
            "resource_id": "-", "status": status, "count": 4
        },
        "target": "audit"
    })
    .to_string()
}

/// What the subscription invokes the function with.
fn delivery(lines: &[(&str, i64, String)]) -> aws_lambda_events::event::cloudwatch_logs::LogsEvent {
    aws_test_config::logs_delivery("stack-ExplanationOfBenefitFunctionLogs-X", lines)
}

async fn object_text(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let object = s3.get_object().bucket(bucket).key(key).send().await;
    let object = object.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    let bytes = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&bytes.into_bytes()).into_owned()
}

#[tokio::test]
async fn subscription_deliveries_become_idempotent_counts_and_the_report_lands_in_s3() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = unique("usage");
    create_table(&ddb, &table)
        .await
        .unwrap_or_else(|e| panic!("create table: {e}"));
    let store = DynamoStore::new(ddb, table);

    // Recent instants: history records expire after 92 days by the store's clock.
    let now = usage_metrics_fn::now_ms();
    let day = 86_400_000;
    let first = delivery(&[
        (
            "e1",
            now - 2 * day,
            audit_line("app-a", "member-1", "ExplanationOfBenefit", 200),
        ),
        (
            "e2",
            now - 2 * day + 5,
            audit_line("app-a", "member-1", "ExplanationOfBenefit", 200),
        ),
        (
            "e3",
            now - 2 * day,
            audit_line("app-b", "member-2", "Patient", 200),
        ),
        (
            "e4",
            now - 2 * day,
            audit_line("app-b", "member-3", "Patient", 403),
        ),
        (
            "e5",
            now - 2 * day,
            "START RequestId: 1 Version: $LATEST".to_owned(),
        ),
    ]);
    assert_eq!(aggregate(&store, &first).await.ok(), Some(3));
    // CloudWatch redelivers the same batch: nothing changes.
    assert_eq!(aggregate(&store, &first).await.ok(), Some(3));
    let second = delivery(&[("e6", now, audit_line("app-b", "member-1", "Coverage", 200))]);
    aggregate(&store, &second)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let history = usage_metrics::history::history(&store, "member-1", now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let app_a = history.iter().find(|a| a.client_id == "app-a");
    assert_eq!(
        app_a.map(|a| a.counts["ExplanationOfBenefit"]),
        Some(8),
        "two reads of 4, once each"
    );

    let s3 = s3_objects::client_for(&aws);
    let bucket = unique("reports");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let config = ReportConfig {
        bucket: bucket.clone(),
        plan: usage_metrics::PlanIdentifiers {
            plan_name: "Acme Health".into(),
            payer_id: "12345".into(),
            plan_ids: vec!["H1234".into()],
        },
    };
    // The year of the first delivery (unless it straddles New Year, both are in it).
    let year = usage_metrics::Day::of_unix_millis(now - 2 * day).map_or(0, |d| d.year());
    let same_year = usage_metrics::Day::of_unix_millis(now).map(|d| d.year()) == Some(year);
    let (written, keys) = report(&store, &s3, &config, year)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected_repeat = u64::from(same_year);
    assert_eq!(
        (
            written.members_with_app_access,
            written.members_with_repeat_app_access
        ),
        (2, expected_repeat)
    );
    assert_eq!(
        keys[0],
        format!("usage-reports/{year}/cms-usage-{year}.json")
    );
    let json: Value = serde_json::from_str(&object_text(&s3, &bucket, &keys[0]).await)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["year"], year);
    assert_eq!(json["members_with_app_access"], 2);
    assert_eq!(json["plan_ids"], json!(["H1234"]));
    let csv = object_text(&s3, &bucket, &keys[1]).await;
    assert_eq!(
        csv.lines().nth(1),
        Some(format!("{year},2,{expected_repeat},Acme Health,12345,H1234").as_str())
    );
}
