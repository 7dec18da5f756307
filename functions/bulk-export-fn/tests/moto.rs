//! Provider Access on AWS, against moto with the real SDK (`scripts/with-moto cargo
//! test -p bulk-export-fn`): a backend client registered in DynamoDB gets a system
//! token, attribution is loaded into the table, the kick-off sends its slices to SQS,
//! the worker function is driven with the received messages the way Lambda's SQS
//! poller drives it (one slice fails, is reported in `batchItemFailures`, comes back
//! and succeeds), the parts land in S3, the manifest lists them, a download is a
//! presigned URL, and DELETE removes the objects. Fails without `AWS_ENDPOINT_URL`
//! unless `SKIP_AWS_TESTS=1`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use backend_auth::grant::{Issuance, client_credentials};
use backend_auth::testing::ClientKey;
use backend_auth::{ClientKeyCache, GrantRequest, HttpKeyFetcher, NewBackendClient};
use bulk_export::api::{BulkConfig, ProviderAccessApi};
use bulk_export::testing::{FailOnce, eob};
use bulk_export::{ExportFiles, WorkItem, WorkQueue};
use bulk_export_aws::{MULTIPART_THRESHOLD, S3ExportFiles, SqsWorkQueue};
use bulk_export_fn::{Adapters, BackendApis, BulkWorkerFunction, StartError, member_match_rules};
use bytes::Bytes;
use fhir::ResourceType;
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use payer_to_payer::budget::FailureBudget;
use serde_json::{Value, json};
use smart_auth::{LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig};
use store_dynamodb::{DynamoStore, create_table};

#[path = "moto/p2p_requests.rs"]
mod p2p_requests;

const BASE: &str = "https://fhir.plan.example";
const NPI: &str = "1234567893";

struct Aws {
    config: aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

async fn aws() -> Option<Aws> {
    let config = aws_test_config::local_sdk_config().await?;
    Some(Aws {
        s3: s3_objects::client_for(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        config,
    })
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{what}-{}-{nanos}", std::process::id())
}

async fn bucket(aws: &Aws) -> String {
    let name = unique("exports");
    aws.s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

/// A queue whose messages come back one second after a failed receive.
async fn queue(aws: &Aws) -> String {
    let created = aws
        .sqs
        .create_queue()
        .queue_name(unique("slices"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await
        .unwrap();
    created.queue_url().unwrap().to_owned()
}

async fn keys(aws: &Aws, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// Receives what the queue has now, as the SQS event Lambda would invoke with.
async fn receive(aws: &Aws, queue_url: &str, want: usize) -> (SqsEvent, HashMap<String, String>) {
    let mut records = Vec::new();
    let mut handles = HashMap::new();
    for _ in 0..50 {
        let received = aws
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        for m in received.messages() {
            let id = m.message_id().unwrap().to_owned();
            handles.insert(id.clone(), m.receipt_handle().unwrap().to_owned());
            let count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_else(|| "1".into());
            records.push(json!({
                "messageId": id,
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": count},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }));
        }
        if records.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(records.len(), want, "messages on the queue");
    let event = serde_json::from_value(json!({"Records": records})).unwrap();
    (event, handles)
}

/// Lambda's poller: deletes every message of the batch the function did not report.
async fn settle(aws: &Aws, queue_url: &str, handles: &HashMap<String, String>, failed: &[String]) {
    for (id, handle) in handles {
        if !failed.contains(id) {
            aws.sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .unwrap();
        }
    }
}

/// 1,001 attributed members (three slices of 500); data for four of them, one in
/// each slice plus one who opted out.
async fn seed(store: &DynamoStore) {
    let mut csv = String::from("provider_npi,member_id,start,end\n");
    for i in 0..=1000 {
        csv.push_str(&format!("{NPI},m{i:04},2020-01-01,\n"));
    }
    let report = attribution::load_file(store, "a.csv", csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.status, "accepted", "{report:?}");
    for patient in ["m0000", "m0001", "m0600", "m1000"] {
        let resources = [
            (
                ResourceType::Patient,
                patient.to_owned(),
                json!({"resourceType": "Patient", "id": patient}),
            ),
            (
                ResourceType::Coverage,
                format!("c-{patient}"),
                json!({"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": format!("Patient/{patient}")}, "payor": [{"reference": "Organization/o1"}]}),
            ),
            (
                ResourceType::ExplanationOfBenefit,
                format!("e-{patient}"),
                eob(patient, "2024-03-01"),
            ),
        ];
        for (t, id, body) in resources {
            store
                .put(ResourceWrite::indexed(t, id, body, WriteCondition::Always))
                .await
                .unwrap();
        }
    }
    member_consent::provider_access::set_opt_out(
        store,
        "m0001",
        true,
        member_consent::provider_access::ChangedBy::Plan,
    )
    .await
    .unwrap();
}

/// A backend client registered in the table, and a system token from its assertion
/// (the same code the deployed `/token` runs, jti memory in DynamoDB).
async fn system_token(store: &DynamoStore, issuer: &LocalIssuer) -> String {
    let (_, token) = token_for(
        store,
        issuer,
        NewBackendClient {
            name: "Clinic A".into(),
            scope: "system/*.rs".into(),
            provider_npis: vec![NPI.into()],
            ..NewBackendClient::default()
        },
    )
    .await;
    token
}

/// Registers `client` (with a fresh key); its client id and a system token.
async fn token_for(
    store: &DynamoStore,
    issuer: &LocalIssuer,
    client: NewBackendClient,
) -> (String, String) {
    let key = ClientKey::es384(&unique("key"));
    let client = backend_auth::clients::register(
        store,
        &NewBackendClient {
            jwks: Some(key.jwks()),
            ..client
        },
    )
    .await
    .unwrap()
    .client_id;
    let token_endpoint = format!("{BASE}/token");
    let assertion = key.assertion(&client, &token_endpoint, 120);
    let at = Issuance {
        issuer: BASE,
        token_endpoint: &token_endpoint,
        signer: issuer,
        now: fhir::clock::unix_now(),
    };
    let request = GrantRequest {
        grant_type: Some("client_credentials"),
        client_assertion_type: Some(backend_auth::JWT_BEARER),
        client_assertion: Some(&assertion),
        scope: Some("system/*.rs"),
    };
    let keys = ClientKeyCache::new(Arc::new(HttpKeyFetcher));
    let token = client_credentials(store, &keys, &at, &request)
        .await
        .unwrap()
        .access_token;
    (client, token)
}

fn get(path: &str, token: &str) -> http::Request<Bytes> {
    http::Request::get(format!("{BASE}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("prefer", "respond-async")
        .body(Bytes::new())
        .unwrap()
}

/// A fresh table, export bucket and work queue in moto, the adapters over them, and
/// a token issuer standing for the deployed `/token` (its keys in `_dir`).
struct Stack {
    adapters: Adapters,
    store: Arc<DynamoStore>,
    bucket: String,
    queue_url: String,
    issuer: LocalIssuer,
    _dir: tempfile::TempDir,
}

async fn stack(aws: &Aws, name: &str) -> Stack {
    let table = unique(name);
    create_table(&aws_sdk_dynamodb::Client::new(&aws.config), &table)
        .await
        .unwrap();
    let bucket = bucket(aws).await;
    let queue_url = queue(aws).await;
    let adapters = Adapters::new(&aws.config, table, bucket.clone());
    let dir = tempfile::tempdir().unwrap();
    let issuer =
        LocalIssuer::load_or_create(&dir.path().join("issuer"), BASE.into(), BASE.into()).unwrap();
    Stack {
        store: Arc::clone(&adapters.store),
        adapters,
        bucket,
        queue_url,
        issuer,
        _dir: dir,
    }
}

#[tokio::test]
async fn an_export_runs_through_sqs_and_s3_with_a_retried_slice_and_each_resource_once() {
    let Some(aws) = aws().await else { return };
    let Stack {
        adapters,
        store,
        bucket,
        queue_url,
        issuer,
        _dir,
    } = stack(&aws, "bulk").await;
    seed(&store).await;
    let token = system_token(&store, &issuer).await;
    let verifier = TokenVerifier::new(VerifierConfig::new(
        BASE.into(),
        BASE.into(),
        Arc::new(StaticJwks::new(issuer.jwks())),
    ));
    let queue: Arc<dyn WorkQueue> = Arc::new(SqsWorkQueue::new(aws.sqs.clone(), &queue_url));
    let api = ProviderAccessApi::new(
        Arc::clone(&store),
        Arc::new(verifier),
        Arc::clone(&adapters.files),
        queue,
        BulkConfig {
            base_url: BASE.into(),
            retention: Duration::from_secs(3600),
        },
    );

    // Kick-off: 202 and a status URL; three slices wait on the queue.
    let response = api
        .handle(get(&format!("/Group/npi-{NPI}/$export"), &token))
        .await;
    assert_eq!(response.status(), 202);
    let status_url = response.headers()["content-location"].to_str().unwrap();
    let status_path = status_url.strip_prefix(BASE).unwrap().to_owned();
    let job_id = status_path.rsplit('/').next().unwrap().to_owned();

    // The worker, with files that fail once in slice 1.
    let worker = BulkWorkerFunction::new(
        Adapters {
            store: Arc::clone(&store),
            // The first write of a slice-1 part fails: a worker dying mid-slice.
            files: Arc::new(FailOnce::new(
                S3ExportFiles::new(aws.s3.clone(), &bucket),
                |key: &str, _| key.contains("Coverage-000001-"),
            )),
        },
        Arc::new(SqsWorkQueue::new(aws.sqs.clone(), &queue_url)),
        FailureBudget::default(),
    );
    let (event, handles) = receive(&aws, &queue_url, 3).await;
    let slice_1 = event
        .records
        .iter()
        .find(|m| m.body.as_deref().is_some_and(|b| b.contains("\"slice\":1")))
        .and_then(|m| m.message_id.clone())
        .unwrap();
    let response = worker.handle(event).await.unwrap();
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        vec![slice_1.clone()],
        "only slice 1 is reported failed"
    );
    settle(&aws, &queue_url, &handles, &failed).await;

    let running = api.handle(get(&status_path, &token)).await;
    assert_eq!(running.status(), 202);
    assert_eq!(running.headers()["x-progress"], "2 of 3 slices");

    // SQS redelivers only slice 1, on its second receive; now it succeeds.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (event, handles) = receive(&aws, &queue_url, 1).await;
    assert_eq!(
        event.records[0].message_id.as_deref(),
        Some(slice_1.as_str())
    );
    assert_eq!(
        event.records[0]
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("2")
    );
    let response = worker.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    settle(&aws, &queue_url, &handles, &[]).await;

    // The manifest lists exactly the parts in S3.
    let done = api.handle(get(&status_path, &token)).await;
    assert_eq!(done.status(), 200);
    let manifest: Value = serde_json::from_slice(done.body()).unwrap();
    assert_eq!(manifest["requiresAccessToken"], true);
    let files_base = format!("{BASE}/bulk-files/");
    let mut listed: Vec<String> = manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            o["url"]
                .as_str()
                .unwrap()
                .strip_prefix(&files_base)
                .unwrap()
                .to_owned()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, keys(&aws, &bucket, &format!("{job_id}/")).await);

    // Every file, downloaded through its presigned URL: each resource exactly once,
    // the opted-out member nowhere, EOBs without the money.
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for output in manifest["output"].as_array().unwrap() {
        let path = output["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
        let response = api.handle(get(path, &token)).await;
        assert_eq!(response.status(), 307);
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.contains("X-Amz-Signature="), "a presigned URL");
        let text = http
            .get(location)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, output["count"].as_u64().unwrap());
        for resource in lines {
            assert_eq!(resource["resourceType"], output["type"]);
            assert!(resource.get("payment").is_none() && resource.get("total").is_none());
            ids.push(format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap(),
                resource["id"].as_str().unwrap()
            ));
        }
    }
    ids.sort();
    let mut expected: Vec<String> = ["m0000", "m0600", "m1000"]
        .iter()
        .flat_map(|p| {
            [
                format!("Coverage/c-{p}"),
                format!("ExplanationOfBenefit/e-{p}"),
                format!("Patient/{p}"),
            ]
        })
        .collect();
    expected.sort();
    assert_eq!(ids, expected);

    // DELETE cancels and removes every object of the job.
    let cancel = http::Request::delete(format!("{BASE}{status_path}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Bytes::new())
        .unwrap();
    assert_eq!(api.handle(cancel).await.status(), 202);
    assert!(keys(&aws, &bucket, &format!("{job_id}/")).await.is_empty());
    assert_eq!(api.handle(get(&status_path, &token)).await.status(), 404);
}

#[tokio::test]
async fn a_part_above_five_mib_goes_up_in_parts_and_a_smaller_one_in_one_put() {
    let Some(aws) = aws().await else { return };
    let bucket = bucket(&aws).await;
    let files = S3ExportFiles::new(aws.s3.clone(), &bucket);
    let line = format!("{}\n", json!({"resourceType": "Patient", "id": "p"}));
    let big: String = line.repeat(MULTIPART_THRESHOLD * 2 / line.len() + 1);
    files
        .put("job1/Patient-000000-000.ndjson", Bytes::from(big.clone()))
        .await
        .unwrap();
    files
        .put("job1/Coverage-000000-000.ndjson", Bytes::from(line.clone()))
        .await
        .unwrap();
    let head = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("job1/Patient-000000-000.ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(big.len() as i64));
    // A multipart object's ETag ends in the number of parts: three of ≤ 5 MiB.
    assert!(
        head.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );
    let small = aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key("job1/Coverage-000000-000.ndjson")
        .send()
        .await
        .unwrap();
    assert!(!small.e_tag().unwrap().contains('-'));

    assert_eq!(
        files
            .download("job1/Missing-000000-000.ndjson")
            .await
            .unwrap(),
        None
    );
    // A job id that is not one path segment never becomes a prefix to delete.
    assert!(files.delete_job("").await.is_err());
    assert!(files.delete_job("job1/..").await.is_err());
    files.delete_job("job1").await.unwrap();
    assert!(keys(&aws, &bucket, "job1/").await.is_empty());
}

#[tokio::test]
async fn twenty_three_work_items_are_sent_in_batches_of_ten_and_all_arrive() {
    let Some(aws) = aws().await else { return };
    let queue_url = queue(&aws).await;
    let items: Vec<WorkItem> = (0..23).map(|slice| WorkItem::new("job1", slice)).collect();
    SqsWorkQueue::new(aws.sqs.clone(), &queue_url)
        .enqueue(items)
        .await
        .unwrap();
    let (event, _) = receive(&aws, &queue_url, 23).await;
    let mut slices: Vec<u32> = event
        .records
        .iter()
        .map(|m| {
            bulk_export_aws::decode_work_item(m.body.as_deref().unwrap())
                .unwrap()
                .slice
        })
        .collect();
    slices.sort();
    assert_eq!(slices, (0..23).collect::<Vec<_>>());
}

#[test]
fn a_work_item_survives_the_message_body() {
    let item = WorkItem::new("abc123", 7);
    let body = bulk_export_aws::encode_work_item(&item).unwrap();
    assert_eq!(body, r#"{"job_id":"abc123","slice":7}"#);
    assert_eq!(bulk_export_aws::decode_work_item(&body).ok(), Some(item));
    let page = WorkItem {
        page: 3,
        after: Some("m0042\u{1}m0042".into()),
        ..WorkItem::new("abc123", 7)
    };
    let body = bulk_export_aws::encode_work_item(&page).unwrap();
    assert_eq!(bulk_export_aws::decode_work_item(&body).ok(), Some(page));
    assert!(bulk_export_aws::decode_work_item("{\"job\":1}").is_err());
}

/// This plan's payer id, as another plan's card for the member shows it.
const THIS_PLAN: &str = "PLAN01";
const HREX_POLICY: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html";

/// Ana, opted in to Payer-to-Payer: a Coverage issued by this plan, a recent claim,
/// a recent claim with a substance-use diagnosis (42 CFR Part 2), and a claim older
/// than the five years PDex asks for.
async fn seed_member(store: &DynamoStore) {
    let claim = |id: &str, date: &str| {
        let mut claim = eob("p2p-ana", date);
        claim["id"] = json!(id);
        claim
    };
    let mut sensitive = claim("e-sensitive", "2026-02-01");
    sensitive["diagnosis"] = json!([{"sequence": 1, "diagnosisCodeableConcept": {"coding": [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F10.20"}]}}]);
    let resources = [
        json!({"resourceType": "Organization", "id": "org-this-plan", "name": "This Plan",
               "identifier": [{"value": THIS_PLAN}]}),
        json!({"resourceType": "Patient", "id": "p2p-ana", "gender": "female",
               "birthDate": "1985-04-12", "name": [{"family": "Núñez", "given": ["Ana"]}]}),
        json!({"resourceType": "Coverage", "id": "c-p2p-ana", "status": "active",
               "subscriberId": "SUB-7001", "beneficiary": {"reference": "Patient/p2p-ana"},
               "payor": [{"reference": "Organization/org-this-plan"}]}),
        claim("e-recent", "2026-03-01"),
        sensitive,
        claim("e-old", "2019-06-01"),
    ];
    for resource in resources {
        let resource_type: ResourceType =
            resource["resourceType"].as_str().unwrap().parse().unwrap();
        let id = resource["id"].as_str().unwrap().to_owned();
        store
            .put(ResourceWrite::indexed(
                resource_type,
                id,
                resource,
                WriteCondition::Always,
            ))
            .await
            .unwrap();
    }
    member_consent::payer_to_payer::set_opt_in(
        store,
        "p2p-ana",
        true,
        member_consent::ChangedBy::Plan,
    )
    .await
    .unwrap();
}

/// HRex `$member-match` for Ana with `birth_date` and a consent under `policy`.
fn member_match(birth_date: &str, policy: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "MemberPatient", "resource": {"resourceType": "Patient", "id": "1",
            "name": [{"family": "NUNEZ", "given": ["ana"]}], "birthDate": birth_date, "gender": "female"}},
        {"name": "CoverageToMatch", "resource": {"resourceType": "Coverage", "id": "9",
            "status": "active", "subscriberId": "sub 7001", "beneficiary": {"reference": "Patient/1"},
            "payor": [{"identifier": {"value": THIS_PLAN}}]}},
        {"name": "Consent", "resource": {"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
            "patient": {"reference": "Patient/1"}, "performer": [{"reference": "Patient/1"}],
            "policy": [{"uri": format!("{HREX_POLICY}#{policy}")}],
            "provision": {"type": "permit", "period": {"start": "2020-01-01", "end": "2099-12-31"}}}}
    ]})
}

fn post(path: &str, token: &str, body: &Value) -> http::Request<Bytes> {
    http::Request::post(format!("{BASE}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/fhir+json")
        .body(Bytes::from(body.to_string()))
        .unwrap()
}

fn json_body(response: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap()
}

/// The ids in a Bundle, as `Type/id`, sorted.
fn bundle_ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn payer_to_payer_member_match_and_everything_run_on_dynamodb_through_the_bulk_api() {
    let Some(aws) = aws().await else { return };
    let Stack {
        adapters,
        store,
        queue_url,
        issuer,
        _dir,
        ..
    } = stack(&aws, "p2p").await;
    seed_member(&store).await;
    let payer = |name: &str| NewBackendClient {
        name: name.into(),
        scope: "system/*.rs".into(),
        payer: true,
        ..NewBackendClient::default()
    };
    let (_, new_plan) = token_for(&store, &issuer, payer("New Plan")).await;
    let (_, other_plan) = token_for(&store, &issuer, payer("Other Plan")).await;
    let clinic = system_token(&store, &issuer).await;
    let verifier = Arc::new(TokenVerifier::new(VerifierConfig::new(
        BASE.into(),
        BASE.into(),
        Arc::new(StaticJwks::new(issuer.jwks())),
    )));
    let queue: Arc<dyn WorkQueue> = Arc::new(SqsWorkQueue::new(aws.sqs.clone(), &queue_url));
    // What bulk-api serves, over DynamoDB: the route decides the handler.
    let api = BackendApis::new(
        &adapters,
        queue,
        verifier,
        BASE,
        Duration::from_secs(3600),
        payer_to_payer::MemberMatchConfig::default(),
    );

    // A provider's backend client is not a payer.
    let refused = api
        .handle(post(
            "/Patient/$member-match",
            &clinic,
            &member_match("1985-04-12", "regular"),
        ))
        .await;
    assert_eq!(refused.status(), 403);

    // The new plan matches Ana with the old card and her #sensitive consent.
    let matched = api
        .handle(post(
            "/Patient/$member-match",
            &new_plan,
            &member_match("1985-04-12", "sensitive"),
        ))
        .await;
    assert_eq!(matched.status(), 200, "{}", json_body(&matched));
    let answer = json_body(&matched);
    assert_eq!(
        answer["parameter"][1]["valueReference"]["reference"],
        "Patient/p2p-ana"
    );

    // $everything: Patient, Coverage and the recent claim as a non-financial EOB; the
    // sensitive claim (the consent is #sensitive) and the old one are left out.
    let everything = api
        .handle(get("/Patient/p2p-ana/$everything", &new_plan))
        .await;
    assert_eq!(everything.status(), 200);
    let bundle = json_body(&everything);
    assert_eq!(
        bundle_ids(&bundle),
        [
            "Coverage/c-p2p-ana",
            "ExplanationOfBenefit/e-recent",
            "Patient/p2p-ana"
        ]
    );
    assert!(!bundle.to_string().contains("\"payment\""), "no remittance");

    // Another payer that never matched her gets what an unknown id gets.
    let stranger = api
        .handle(get("/Patient/p2p-ana/$everything", &other_plan))
        .await;
    assert_eq!(stranger.status(), 404);

    // Brute force: the other payer's failed matches are counted in DynamoDB, and
    // after the hourly budget every call is 429 with Retry-After.
    for _ in 0..payer_to_payer::budget::DEFAULT_FAILURES_PER_HOUR {
        let wrong = api
            .handle(post(
                "/Patient/$member-match",
                &other_plan,
                &member_match("1985-04-13", "regular"),
            ))
            .await;
        assert_eq!(wrong.status(), 422);
        assert!(!String::from_utf8_lossy(wrong.body()).contains("p2p-ana"));
    }
    let throttled = api
        .handle(post(
            "/Patient/$member-match",
            &other_plan,
            &member_match("1985-04-12", "regular"),
        ))
        .await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    // The new plan's budget is its own.
    let again = api
        .handle(post(
            "/Patient/$member-match",
            &new_plan,
            &member_match("1985-04-12", "regular"),
        ))
        .await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn bulk_member_match_then_davinci_data_export_run_through_sqs_and_s3_as_the_consent_allows() {
    let Some(aws) = aws().await else { return };
    let Stack {
        adapters,
        store,
        queue_url,
        issuer,
        _dir,
        ..
    } = stack(&aws, "p2p-export").await;
    seed_member(&store).await;
    let (_, token) = token_for(
        &store,
        &issuer,
        NewBackendClient {
            name: "New Plan".into(),
            scope: "system/*.rs".into(),
            payer: true,
            ..NewBackendClient::default()
        },
    )
    .await;
    let api = BackendApis::new(
        &adapters,
        Arc::new(SqsWorkQueue::new(aws.sqs.clone(), &queue_url)),
        Arc::new(TokenVerifier::new(VerifierConfig::new(
            BASE.into(),
            BASE.into(),
            Arc::new(StaticJwks::new(issuer.jwks())),
        ))),
        BASE,
        Duration::from_secs(3600),
        payer_to_payer::MemberMatchConfig::default(),
    );
    let worker = BulkWorkerFunction::new(
        Adapters {
            store: Arc::clone(&store),
            files: Arc::clone(&adapters.files),
        },
        Arc::new(SqsWorkQueue::new(aws.sqs.clone(), &queue_url)),
        FailureBudget::default(),
    );

    // $bulk-member-match: Ana under a #sensitive consent, and a stranger. The chunk
    // goes through SQS to bulk-worker, which matches against DynamoDB.
    let bundle =
        |request: Value| json!({"name": "MemberBundle", "part": request["parameter"].clone()});
    let mut stranger = member_match("1985-04-12", "regular");
    stranger["parameter"][1]["resource"]["subscriberId"] = json!("NOBODY-1");
    let body = json!({"resourceType": "Parameters", "parameter": [
        bundle(member_match("1985-04-12", "sensitive")),
        bundle(stranger),
    ]});
    let response = api
        .handle(post("/Group/$bulk-member-match", &token, &body))
        .await;
    assert_eq!(response.status(), 202, "{:?}", response.body());
    let match_status = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_owned();
    assert_eq!(api.handle(get(&match_status, &token)).await.status(), 202);
    let (event, handles) = receive(&aws, &queue_url, 1).await;
    let response = worker.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    settle(&aws, &queue_url, &handles, &[]).await;
    let answer = api.handle(get(&match_status, &token)).await;
    assert_eq!(answer.status(), 200);
    let answer = json_body(&answer);
    let matched = &answer["parameter"][0]["resource"];
    assert_eq!(
        matched["member"][0]["entity"]["reference"],
        "Patient/p2p-ana"
    );
    assert_eq!(
        answer["parameter"][1]["resource"]["quantity"], 1,
        "the stranger"
    );
    let group_id = matched["id"].as_str().unwrap();

    // `exportType=hl7.fhir.us.davinci-pdex#payertopayer`, percent-encoded.
    let path = format!(
        "/Group/{group_id}/$davinci-data-export?exportType=hl7.fhir.us.davinci-pdex%23payertopayer"
    );
    let response = api.handle(get(&path, &token)).await;
    assert_eq!(response.status(), 202, "{:?}", response.body());
    let status_url = response.headers()["content-location"].to_str().unwrap();
    let status_path = status_url.strip_prefix(BASE).unwrap().to_owned();

    // bulk-worker runs the one slice from SQS.
    let (event, handles) = receive(&aws, &queue_url, 1).await;
    let response = worker.handle(event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    settle(&aws, &queue_url, &handles, &[]).await;

    let done = api.handle(get(&status_path, &token)).await;
    assert_eq!(done.status(), 200);
    let manifest: Value = serde_json::from_slice(done.body()).unwrap();
    let http = reqwest::Client::new();
    let mut sent = Vec::new();
    let mut targets = Vec::new();
    for output in manifest["output"].as_array().unwrap() {
        let path = output["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
        let response = api.handle(get(path, &token)).await;
        assert_eq!(response.status(), 307);
        let location = response.headers()["location"].to_str().unwrap();
        let text = http
            .get(location)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in text.lines() {
            let resource: Value = serde_json::from_str(line).unwrap();
            assert!(resource.get("payment").is_none(), "non-financial");
            if resource["resourceType"] == "Provenance" {
                targets.push(
                    resource["target"][0]["reference"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            } else {
                sent.push(format!(
                    "{}/{}",
                    resource["resourceType"].as_str().unwrap(),
                    resource["id"].as_str().unwrap()
                ));
            }
        }
    }
    sent.sort();
    targets.sort();
    // Not the Part 2 claim (#sensitive), not the claim older than five years.
    assert_eq!(
        sent,
        [
            "Coverage/c-p2p-ana",
            "ExplanationOfBenefit/e-recent",
            "Patient/p2p-ana"
        ]
    );
    assert_eq!(targets, sent, "a Provenance for each resource");
}

#[test]
fn the_payer_to_payer_routes_reach_their_handler_with_their_literal_paths() {
    // events/patient-member-match.json and events/patient-everything.json are what API
    // Gateway sends for `POST /Patient/$member-match` and `GET /Patient/{id}/$everything`
    // (template.yaml, BulkApiFunction), which BackendApis hands to payer_to_payer.
    for (event, path) in [
        (
            include_str!("../../../events/patient-member-match.json"),
            "/Patient/$member-match",
        ),
        (
            include_str!("../../../events/patient-everything.json"),
            "/Patient/patient-999996666-DH000154930/$everything",
        ),
    ] {
        let request = lambda_http::request::from_str(event).unwrap();
        let request = lambda_adapter::from_lambda(request);
        assert_eq!(request.uri().path(), path);
        assert!(payer_to_payer::api::serves_path(request.uri().path()));
        assert!(!payer_to_payer::api::serves_path("/Patient/$export"));
    }
}

/// The plan's sensitive-code list lives in a Secrets Manager secret: `default` is the
/// documented list, JSON is the plan's own, and anything else stops the cold start
/// rather than sharing under a list nobody chose.
#[tokio::test]
async fn the_sensitive_code_list_comes_from_the_plans_secret_or_the_function_does_not_start() {
    let Some(aws) = aws().await else { return };
    let secrets = aws_sdk_secretsmanager::Client::new(&aws.config);
    let secret = |value: &'static str| {
        let secrets = secrets.clone();
        async move {
            secrets
                .create_secret()
                .name(unique("sensitive-codes"))
                .secret_string(value)
                .send()
                .await
                .unwrap()
                .arn
                .unwrap()
        }
    };
    let budget = FailureBudget { per_hour: 5 };
    let rules = |secret: Option<String>| member_match_rules(&aws.config, budget, secret);

    let default = rules(Some(secret("default").await)).await.unwrap();
    assert_eq!(
        default.sensitive,
        payer_to_payer::SensitivePolicy::default()
    );
    assert_eq!(default.budget, budget);

    let own = r#"{"ranges": [{"category": "genetic", "system": "cpt-hcpcs", "from": "81200", "to": "81479"}]}"#;
    let plans = rules(Some(secret(own).await)).await.unwrap();
    assert!(
        plans
            .sensitive
            .is_sensitive_code(fhir::systems::CPT, "81220")
    );
    assert!(
        !plans
            .sensitive
            .is_sensitive_code(fhir::systems::ICD10_CM, "F10.20")
    );

    let typo = rules(Some(secret("{\"ranges\": [{\"from\": \"F10\"}]}").await)).await;
    assert!(
        matches!(typo, Err(StartError::SensitiveCodes(_))),
        "{typo:?}"
    );
    let missing = rules(Some(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into(),
    ))
    .await;
    assert!(
        matches!(missing, Err(StartError::SensitiveCodes(_))),
        "{missing:?}"
    );

    // No secret configured (a stack from before it existed): the default list.
    let unset = rules(None).await.unwrap();
    assert_eq!(unset.sensitive, payer_to_payer::SensitivePolicy::default());
}
