//! The audit archive against moto's S3 with the real SDK (`scripts/with-moto cargo
//! test -p audit-archive-fn`): a subscription delivery, as CloudWatch Logs sends it,
//! becomes one gzipped NDJSON object in an Object Lock bucket, holding the audit lines
//! only and, of each, only the allowlisted fields: no PHI beyond the member id.

use std::io::Read;

use audit_archive_fn::ArchiveFunction;
use aws_sdk_s3::types::{
    DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
    ObjectLockRule,
};
use serde_json::{Value, json};

const GROUP: &str = "/aws/lambda/stack-ExplanationOfBenefitFunction-X";
/// 2026-12-07T10:00:00Z.
const AT: i64 = 1_796_637_600_000;

fn audit(fields: Value) -> String {
    json!({"level": "INFO", "target": "audit", "fields": fields}).to_string()
}

async fn locked_bucket(s3: &aws_sdk_s3::Client) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let bucket = format!("audit-{}-{nanos}", std::process::id());
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {e:?}"));
    let retention = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::Governance)
        .days(1)
        .build();
    let rule = ObjectLockRule::builder()
        .default_retention(retention)
        .build();
    let lock = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(rule)
        .build();
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(lock)
        .send()
        .await
        .unwrap_or_else(|e| panic!("object lock: {e:?}"));
    bucket
}

async fn archived_lines(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<Value> {
    let object = s3.get_object().bucket(bucket).key(key).send().await;
    let object = object.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    let bytes = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.into_bytes().as_ref())
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("gunzip: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[tokio::test]
async fn a_delivery_is_archived_as_allowlisted_audit_lines_under_object_lock() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let s3 = s3_objects::client_for(&aws);
    let bucket = locked_bucket(&s3).await;
    let function = ArchiveFunction::new(s3.clone(), &bucket);

    let delivery = aws_test_config::logs_delivery(
        GROUP,
        &[
            (
                "37001",
                AT,
                audit(json!({
                    "message": "fhir access", "client_id": "app-1", "grant_id": "g-1",
                    "patient": "pat-123", "interaction": "search",
                    "resource_type": "ExplanationOfBenefit", "resource_id": "-",
                    "status": 200, "count": 4
                })),
            ),
            (
                "37002",
                AT + 1,
                // A field a future log line might add by mistake.
                audit(json!({
                    "message": "fhir access", "patient": "pat-123",
                    "name": "Jane Doe", "birthDate": "1970-01-01"
                })),
            ),
            (
                "37003",
                AT + 2,
                "START RequestId: 1 Version: $LATEST".into(),
            ),
            (
                "37004",
                AT + 3,
                json!({"level": "INFO", "target": "fhir_api", "fields": {"message": "x"}})
                    .to_string(),
            ),
        ],
    );
    let key = function
        .handle(delivery.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the delivery held audit lines"));
    assert_eq!(
        key,
        "audit/year=2026/month=12/day=07/stack-ExplanationOfBenefitFunction-X-37001.ndjson.gz"
    );

    let lines = archived_lines(&s3, &bucket, &key).await;
    assert_eq!(lines.len(), 2, "the two audit lines, nothing else");
    assert_eq!(lines[0]["fields"]["patient"], "pat-123");
    assert_eq!(lines[0]["fields"]["count"], 4);
    assert_eq!(lines[0]["time"], "2026-12-07T10:00:00Z");
    let text = serde_json::to_string(&lines).unwrap_or_default();
    for phi in ["Jane", "1970-01-01", "birthDate"] {
        assert!(!text.contains(phi), "{phi} reached the archive: {text}");
    }

    // A retried delivery writes the same key: a second version, both kept.
    function
        .handle(delivery)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let versions = s3
        .list_object_versions()
        .bucket(&bucket)
        .prefix(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let versions = versions.versions();
    assert_eq!(versions.len(), 2);

    // Under retention, a version cannot be deleted.
    let first = versions
        .iter()
        .find_map(|v| v.version_id())
        .unwrap_or_default();
    let delete = s3
        .delete_object()
        .bucket(&bucket)
        .key(&key)
        .version_id(first)
        .send()
        .await;
    assert!(delete.is_err(), "a locked version was deleted");
}

#[tokio::test]
async fn deliveries_without_audit_lines_write_nothing() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let s3 = s3_objects::client_for(&aws);
    let bucket = locked_bucket(&s3).await;
    let function = ArchiveFunction::new(s3.clone(), &bucket);
    let delivery = aws_test_config::logs_delivery(
        GROUP,
        &[("1", AT, "REPORT RequestId: 1 Duration: 2 ms".into())],
    );
    let written = function
        .handle(delivery)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written, None);
    let listed = s3.list_objects_v2().bucket(&bucket).send().await;
    let listed = listed.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(listed.key_count(), Some(0));
}
