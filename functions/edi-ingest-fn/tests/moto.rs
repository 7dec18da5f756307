//! The EDI bucket's Lambdas against DynamoDB and S3 served by moto: run through
//! `scripts/with-moto cargo test -p edi-ingest-fn`.
//!
//! The directory load: a roster under `directory/` becomes searchable through the
//! directory API, the same event twice changes nothing, a bad file gets a report
//! and leaves the directory unchanged.
//!
//! The shared ingest scenarios run on a DynamoStore; the handler is driven with
//! real S3 events: the same event twice, a key that needs decoding, a bad file, a
//! file over the size cap; a file of several large sets streams from S3 to the
//! same result as the in-memory path.
//! Without `AWS_ENDPOINT_URL` these tests FAIL, unless `SKIP_AWS_TESTS=1`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use edi_ingest::whole_file::WholeFileLimits;
use edi_ingest::{FileStatus, IngestOutcome, Ingestor, scenarios};
use edi_ingest_fn::{AttributionLoader, DirectoryLoader, Handler, RecordResult};
use s3_objects::S3Objects;
use store_dynamodb::{DynamoStore, create_table};
use store_redb::RedbStore;

struct Aws {
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
}

async fn aws() -> Option<Aws> {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ if std::env::var("SKIP_AWS_TESTS").as_deref() == Ok("1") => return None,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: run through `scripts/with-moto cargo test …` (or SKIP_AWS_TESTS=1)"
        ),
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(RetryConfig::standard())
        .load()
        .await;
    Some(Aws {
        ddb: aws_sdk_dynamodb::Client::new(&config),
        s3: s3_objects::client_for(&config),
    })
}

fn unique(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{}-{nanos}", test.replace('_', "-"), std::process::id())
}

async fn table(aws: &Aws, test: &str) -> Arc<DynamoStore> {
    let name = format!("t-{}", unique(test));
    create_table(&aws.ddb, &name)
        .await
        .unwrap_or_else(|e| panic!("create table: {e}"));
    Arc::new(DynamoStore::new(aws.ddb.clone(), name))
}

async fn bucket(aws: &Aws, test: &str) -> String {
    let name = unique(test).to_lowercase();
    let name: String = name.chars().take(63).collect();
    aws.s3
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket: {e:?}"));
    aws.s3
        .put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("versioning: {e:?}"));
    name
}

async fn upload(aws: &Aws, bucket: &str, key: &str, bytes: &[u8]) {
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload {key}: {e:?}"));
}

async fn text(aws: &Aws, bucket: &str, key: &str) -> String {
    let object = aws.s3.get_object().bucket(bucket).key(key).send().await;
    let object = object.unwrap_or_else(|e| panic!("{key}: {e:?}"));
    let bytes = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    String::from_utf8_lossy(&bytes.into_bytes()).into_owned()
}

async fn versions(aws: &Aws, bucket: &str) -> Vec<(String, String)> {
    let listed = aws.s3.list_object_versions().bucket(bucket).send().await;
    let listed = listed.unwrap_or_else(|e| panic!("list versions: {e:?}"));
    let mut out: Vec<(String, String)> = listed
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

async fn status_tag(aws: &Aws, bucket: &str, key: &str) -> Option<String> {
    let tags = aws
        .s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    tags.tag_set()
        .iter()
        .find(|t| t.key() == "status")
        .map(|t| t.value().to_owned())
}

/// An S3 put event for `key`, encoded the way S3 encodes it.
fn event(bucket: &str, encoded_key: &str) -> S3Event {
    let template = include_str!("../../../events/s3-put-inbound.json")
        .replace("patient-access-edi-123456789012-us-east-1", bucket)
        .replace("inbound/claims+2024-01-15+%28batch+1%29.x12", encoded_key);
    serde_json::from_str(&template).unwrap_or_else(|e| panic!("event: {e}"))
}

fn handler(aws: &Aws, store: Arc<DynamoStore>) -> Handler<Ingestor<DynamoStore>> {
    Handler::new(store, scenarios::config(), aws.s3.clone())
}

macro_rules! dynamo_scenarios {
    ($($scenario:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            let Some(aws) = aws().await else { return };
            scenarios::$scenario(table(&aws, stringify!($scenario)).await).await;
        }
    )*};
}

dynamo_scenarios!(
    every_fixture_twice_is_a_no_op,
    a_fresh_claim_is_busy,
    bad_inputs_are_rejected_and_store_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_set_applied_bad_set_reported() {
    let Some(aws) = aws().await else { return };
    scenarios::good_set_applied_bad_set_reported(table(&aws, "mixed").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_file_then_rerun_matches_a_clean_run() {
    let Some(aws) = aws().await else { return };
    let crashed = table(&aws, "crashed").await;
    let clean = table(&aws, "clean").await;
    scenarios::crash_mid_file_then_rerun_matches_a_clean_run(crashed, clean).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_s3_object_twice_is_a_no_op() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "same-object").await;
    let bytes = scenarios::FIXTURES[4].1;
    upload(&aws, &bucket, "inbound/835.x12", bytes).await;
    let objects = S3Objects::new(aws.s3.clone(), &bucket);
    scenarios::same_object_twice_is_a_no_op(
        table(&aws, "same-object").await,
        &objects,
        "inbound/835.x12",
        bytes,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_s3_event_twice_changes_nothing_the_second_time() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "same-event").await;
    let key = "inbound/claims 2024-01-15 (batch 1).x12";
    let bytes = scenarios::FIXTURES[0].1;
    upload(&aws, &bucket, key, bytes).await;
    let store = table(&aws, "same-event").await;
    let handler = handler(&aws, Arc::clone(&store));
    let event = event(&bucket, "inbound/claims+2024-01-15+%28batch+1%29.x12");

    let first = handler
        .handle(event.clone())
        .await
        .unwrap_or_else(|e| panic!("first: {e}"));
    assert_eq!(
        first,
        [RecordResult {
            key: key.into(),
            result: "processed".into()
        }]
    );
    let report: serde_json::Value =
        serde_json::from_str(&text(&aws, &bucket, &format!("reports/{key}.json")).await)
            .unwrap_or_default();
    assert_eq!(report["status"], "accepted", "{report}");
    assert_eq!(report["file"], format!("s3://{bucket}/{key}"));
    let ack = text(&aws, &bucket, &format!("reports/{key}.999")).await;
    assert!(
        ack.contains("IK5*A~") && ack.contains("AK9*A*1*1*1~"),
        "{ack}"
    );
    assert_eq!(
        status_tag(&aws, &bucket, key).await.as_deref(),
        Some("processed")
    );
    let objects_before = versions(&aws, &bucket).await;
    let resources_before = scenarios::versions(store.as_ref(), bytes).await;

    let second = handler
        .handle(event)
        .await
        .unwrap_or_else(|e| panic!("second: {e}"));
    assert_eq!(
        second,
        [RecordResult {
            key: key.into(),
            result: "already-processed".into()
        }]
    );
    assert_eq!(
        versions(&aws, &bucket).await,
        objects_before,
        "no new object versions"
    );
    assert_eq!(
        scenarios::versions(store.as_ref(), bytes).await,
        resources_before,
        "no new resource versions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_is_tagged_rejected_with_its_report_and_other_prefixes_are_ignored() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "bad-file").await;
    let found = scenarios::BAD
        .iter()
        .find(|(n, _)| *n == "wrong_ge_count.x12");
    let (name, bytes) = *found.unwrap_or_else(|| panic!("wrong_ge_count.x12 is not in the corpus"));
    let key = format!("inbound/{name}");
    upload(&aws, &bucket, &key, bytes).await;
    upload(&aws, &bucket, "elsewhere/x.x12", scenarios::FIXTURES[0].1).await;
    let handler = handler(&aws, table(&aws, "bad-file").await);

    let results = handler
        .handle(event(&bucket, &key))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(results[0].result, "rejected");
    let report = text(&aws, &bucket, &format!("reports/{key}.json")).await;
    assert!(report.contains("\"status\": \"rejected\""), "{report}");
    assert_eq!(
        status_tag(&aws, &bucket, &key).await.as_deref(),
        Some("rejected")
    );

    let ignored = handler
        .handle(event(&bucket, "elsewhere/x.x12"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ignored[0].result, "skipped");
    let gone = handler
        .handle(event(&bucket, "inbound/never-uploaded.x12"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone[0].result, "gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_several_large_sets_streams_from_s3_to_the_in_memory_result() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "streamed").await;
    let key = "inbound/several large sets.x12";
    // Larger than the x12 reader's 64 KiB read chunk, every set written in several
    // batches of 64 changes, members recurring across a set's batches.
    let bytes = scenarios::several_large_sets(3, 40, Some(1));
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());
    upload(&aws, &bucket, key, &bytes).await;
    let spool = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let objects = S3Objects::new(aws.s3.clone(), &bucket).with_spool_dir(spool.path());
    // The in-memory reference runs on redb: moto serialises requests, and the stored
    // bodies are compared without `meta` (and against edi_fhir's own fold as well).
    let reference = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let in_memory = RedbStore::open(reference.path().join("in-memory.redb"))
        .unwrap_or_else(|e| panic!("redb: {e}"));
    let done = scenarios::streamed_object_matches_in_memory(
        table(&aws, "streamed").await,
        Arc::new(in_memory),
        &objects,
        key,
        &bytes,
    )
    .await;
    let accepted: Vec<bool> = done
        .report
        .transaction_sets
        .iter()
        .map(|s| s.accepted)
        .collect();
    assert_eq!(
        accepted,
        [true, false, true, true, true],
        "{}",
        done.report.to_json()
    );
    let report = text(&aws, &bucket, &format!("reports/{key}.json")).await;
    assert!(
        report.contains("\"status\": \"partially-accepted\""),
        "{report}"
    );
    assert_eq!(
        status_tag(&aws, &bucket, key).await.as_deref(),
        Some("processed")
    );
    let left = std::fs::read_dir(spool.path())
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(left, 0, "the spooled copy is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_cap_is_refused_with_a_report_before_it_is_downloaded() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "too-large").await;
    let key = "inbound/too large.x12";
    let bytes = scenarios::FIXTURES[0].1;
    upload(&aws, &bucket, key, bytes).await;
    let store = table(&aws, "too-large").await;
    let mut config = scenarios::config();
    config.max_file_bytes = bytes.len() - 1;
    let ingestor = Ingestor::new(Arc::clone(&store), config);
    let objects = S3Objects::new(aws.s3.clone(), &bucket);
    for attempt in ["first", "second"] {
        let outcome = ingestor.ingest_object(&objects, key).await;
        let Ok(IngestOutcome::Ingested(done)) = outcome else {
            panic!("{attempt}: {outcome:?}")
        };
        assert_eq!(done.report.status, FileStatus::Rejected, "{attempt}");
        assert_eq!(done.report.file_problems[0].code, "024", "{attempt}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&text(&aws, &bucket, &format!("reports/{key}.json")).await)
            .unwrap_or_default();
    assert_eq!(report["status"], "rejected", "{report}");
    assert_eq!(report["file_problems"][0]["code"], "024", "{report}");
    let message = report["file_problems"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(&bytes.len().to_string()), "{message}");
    assert_eq!(
        status_tag(&aws, &bucket, key).await.as_deref(),
        Some("rejected")
    );
    assert!(scenarios::versions(store.as_ref(), bytes).await.is_empty());
}

fn directory_handler(aws: &Aws, store: Arc<DynamoStore>) -> Handler<DirectoryLoader<DynamoStore>> {
    let config = directory_load::ObjectLoadConfig {
        load: directory_load::LoadConfig {
            plan: directory_load::PlanIdentity {
                organization_id: "org-payer-999996666".into(),
                name: "Demo Health Plan".into(),
            },
            stale_after_days: 30,
        },
        max_file_bytes: 1024 * 1024,
        stale_after_secs: 960,
    };
    Handler::with_loader(DirectoryLoader::new(store, config), aws.s3.clone())
}

/// The match ids of a directory search on `store`.
async fn directory_search(store: &Arc<DynamoStore>, query: &str) -> Vec<String> {
    let api = directory_api::DirectoryApi::new(
        Arc::clone(store),
        Arc::new(smart_auth::CursorSealer::new([5; 32])),
        directory_api::DirectoryConfig::new("https://api.example/directory"),
    );
    let request = http::Request::builder()
        .uri(format!("/directory/{query}"))
        .body(bytes::Bytes::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let response = api.handle(request).await;
    assert_eq!(response.status(), http::StatusCode::OK, "{query}");
    let bundle: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_under_directory_becomes_searchable_once_and_a_bad_file_changes_nothing() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "directory-load").await;
    let store = table(&aws, "directory-load").await;
    let handler = directory_handler(&aws, Arc::clone(&store));

    let key = "directory/roster.snapshot.csv";
    upload(
        &aws,
        &bucket,
        key,
        demo_data::roster::roster_csv().as_bytes(),
    )
    .await;
    let first = handler
        .handle(event(&bucket, key))
        .await
        .unwrap_or_else(|e| panic!("first: {e}"));
    assert_eq!(
        first,
        [RecordResult {
            key: key.into(),
            result: "processed".into()
        }]
    );
    let report: serde_json::Value =
        serde_json::from_str(&text(&aws, &bucket, &format!("reports/{key}.json")).await)
            .unwrap_or_default();
    assert_eq!(report["status"], "applied", "{report}");
    assert_eq!(report["mode"], "snapshot", "{report}");
    assert_eq!(
        status_tag(&aws, &bucket, key).await.as_deref(),
        Some("processed")
    );
    let family = directory_search(&store, "PractitionerRole?specialty=207Q00000X").await;
    assert_eq!(family.len(), 1, "{family:?}");
    let practitioners = directory_search(&store, "Practitioner?_count=100").await;
    assert!(practitioners.len() >= 8, "{practitioners:?}");

    // The same event again: the ledger says done, nothing is written.
    let objects_before = versions(&aws, &bucket).await;
    let second = handler
        .handle(event(&bucket, key))
        .await
        .unwrap_or_else(|e| panic!("second: {e}"));
    assert_eq!(second[0].result, "already-processed");
    assert_eq!(
        versions(&aws, &bucket).await,
        objects_before,
        "no new object versions"
    );

    // A bad file: a report naming the line, the object tagged, the directory as it was.
    let bad = "directory/bad.ndjson";
    upload(
        &aws,
        &bucket,
        bad,
        b"{\"resourceType\": \"Practitioner\", \"id\": \"new-1\", \"name\": [{\"family\": \"A\"}]}\n{not json\n",
    )
    .await;
    let rejected = handler
        .handle(event(&bucket, bad))
        .await
        .unwrap_or_else(|e| panic!("bad: {e}"));
    assert_eq!(rejected[0].result, "rejected");
    let report: serde_json::Value =
        serde_json::from_str(&text(&aws, &bucket, &format!("reports/{bad}.json")).await)
            .unwrap_or_default();
    assert_eq!(report["status"], "rejected", "{report}");
    assert_eq!(report["problems"][0]["line"], 2, "{report}");
    assert_eq!(
        status_tag(&aws, &bucket, bad).await.as_deref(),
        Some("rejected")
    );
    assert_eq!(
        directory_search(&store, "Practitioner?_count=100").await,
        practitioners,
        "a rejected file leaves the directory unchanged"
    );

    // X12 under inbound/ is not the directory function's.
    let skipped = handler
        .handle(event(&bucket, "inbound/835.x12"))
        .await
        .unwrap_or_else(|e| panic!("skipped: {e}"));
    assert_eq!(skipped[0].result, "skipped");
}

fn attribution_handler(
    aws: &Aws,
    store: Arc<DynamoStore>,
) -> Handler<AttributionLoader<DynamoStore>> {
    let limits = WholeFileLimits {
        max_file_bytes: 1024 * 1024,
        stale_after_secs: 960,
    };
    Handler::with_loader(AttributionLoader::new(store, limits), aws.s3.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribution_list_under_attribution_is_loaded_once_and_a_bad_one_changes_nothing() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws, "attribution-load").await;
    let store = table(&aws, "attribution-load").await;
    let handler = attribution_handler(&aws, Arc::clone(&store));

    let key = "attribution/2027/q1.csv";
    let csv = "provider_npi,member_id,start,end,opt_out\n\
               1234567893,p1,2024-01-01,,\n\
               1234567893,p2,2024-01-01,2027-12-31,\n";
    upload(&aws, &bucket, key, csv.as_bytes()).await;
    let first = handler
        .handle(event(&bucket, key))
        .await
        .unwrap_or_else(|e| panic!("first: {e}"));
    assert_eq!(first[0].result, "processed");
    let report: serde_json::Value =
        serde_json::from_str(&text(&aws, &bucket, &format!("reports/{key}.json")).await)
            .unwrap_or_default();
    assert_eq!(report["status"], "accepted", "{report}");
    let group_id = report["groups"][0]["group_id"].as_str().unwrap_or_default();
    let header = attribution::group::header(store.as_ref(), group_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no Group {group_id}"));
    assert_eq!(header.member_count, 2);
    assert_eq!(
        status_tag(&aws, &bucket, key).await.as_deref(),
        Some("processed")
    );

    // The same event again: the ledger says done, nothing is written.
    let objects_before = versions(&aws, &bucket).await;
    let second = handler
        .handle(event(&bucket, key))
        .await
        .unwrap_or_else(|e| panic!("second: {e}"));
    assert_eq!(second[0].result, "already-processed");
    assert_eq!(versions(&aws, &bucket).await, objects_before);

    // A bad list (an invalid NPI on line 3): a report naming the line, the Group as
    // it was.
    let bad = "attribution/bad.csv";
    let bad_csv = "provider_npi,member_id,start,end\n\
                   1234567893,p3,2024-01-01,\n\
                   1234567890,p4,2024-01-01,\n";
    upload(&aws, &bucket, bad, bad_csv.as_bytes()).await;
    let rejected = handler
        .handle(event(&bucket, bad))
        .await
        .unwrap_or_else(|e| panic!("bad: {e}"));
    assert_eq!(rejected[0].result, "rejected");
    let report: serde_json::Value =
        serde_json::from_str(&text(&aws, &bucket, &format!("reports/{bad}.json")).await)
            .unwrap_or_default();
    assert_eq!(report["status"], "rejected", "{report}");
    assert_eq!(report["problems"][0]["line"], 3, "{report}");
    assert_eq!(
        status_tag(&aws, &bucket, bad).await.as_deref(),
        Some("rejected")
    );
    let unchanged = attribution::group::header(store.as_ref(), group_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|h| (h.version, h.member_count));
    assert_eq!(unchanged, Some((header.version, 2)));

    // Directory files are not this function's.
    let skipped = handler
        .handle(event(&bucket, "directory/roster.csv"))
        .await
        .unwrap_or_else(|e| panic!("skipped: {e}"));
    assert_eq!(skipped[0].result, "skipped");
}
