//! Every CARIN search parameter gives the same answer on both stores: the embedded
//! redb store and DynamoDB (through moto; run under `scripts/with-moto`). The servers
//! are the very `LocalServer` that `serve` runs, one per store, with the demo loaded
//! the way `serve` loads it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fhir_store::{KeyValueStore, ListQuery, Partition, ResourceStore};
use patient_access::{LocalServer, load_demo};
use serde_json::Value;
use smart_auth::{AccessClaims, LocalIssuer};
use store_dynamodb::{DynamoStore, create_table};
use store_redb::RedbStore;

const BASE: &str = "http://localhost:8080";

async fn dynamo_store() -> Option<DynamoStore> {
    let config = aws_test_config::local_sdk_config().await?;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("both-stores-{}", std::process::id());
    create_table(&client, &table)
        .await
        .expect("table from infra/dynamodb-table.json");
    Some(DynamoStore::new(client, table))
}

async fn server<S: ResourceStore + KeyValueStore + 'static>(
    store: Arc<S>,
    issuer: &LocalIssuer,
) -> LocalServer<S> {
    load_demo(Arc::clone(&store), &demo_data::DemoConfig::default(), None)
        .await
        .expect("demo data");
    LocalServer::new(
        store,
        issuer,
        &secrets::KeyRing::single(secrets::KeyMaterial::new([9u8; 32])),
        BASE,
    )
    .expect("server")
}

/// Status and the sorted `mode:Type/id` entries of one response, following `next` links.
async fn answer<S: ResourceStore + KeyValueStore + 'static>(
    server: &LocalServer<S>,
    path: &str,
    token: &str,
) -> (u16, Vec<String>) {
    let mut entries = Vec::new();
    let mut next = Some(path.to_owned());
    let mut status = 0;
    while let Some(uri) = next.take() {
        let uri = uri.strip_prefix(BASE).unwrap_or(&uri).to_owned();
        let request = http::Request::builder()
            .uri(uri.as_str())
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .expect("request");
        let response = server.handle(request).await;
        status = response.status().as_u16();
        let body: Value = serde_json::from_slice(response.body()).expect("JSON");
        for entry in body["entry"].as_array().into_iter().flatten() {
            entries.push(format!(
                "{}:{}/{}",
                entry["search"]["mode"].as_str().unwrap_or("-"),
                entry["resource"]["resourceType"].as_str().unwrap_or("?"),
                entry["resource"]["id"].as_str().unwrap_or("?")
            ));
        }
        next = body["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
    }
    entries.sort();
    (status, entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_search_parameter_answers_the_same_on_redb_and_dynamodb() {
    let Some(dynamo) = dynamo_store().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let issuer = LocalIssuer::load_or_create(&dir.path().join("issuer"), BASE.into(), BASE.into())
        .expect("issuer");
    let redb_store = Arc::new(RedbStore::open(dir.path().join("fhir.redb")).expect("redb"));
    let redb = server(Arc::clone(&redb_store), &issuer).await;
    let dynamo = server(Arc::new(dynamo), &issuer).await;

    let demo = demo_data::generate(&demo_data::DemoConfig::default());
    let member = &demo.members[0];
    let other = &demo.members[1];
    let token = issuer
        .mint(&AccessClaims::for_member(
            &member.patient_id,
            "both-stores",
            "patient/*.rs",
            Duration::from_secs(600),
        ))
        .expect("token");
    let p = &member.patient_id;
    let queries = [
        format!("/ExplanationOfBenefit?patient={p}&_count=7"),
        format!("/ExplanationOfBenefit?patient=Patient/{p}&_include=ExplanationOfBenefit:*"),
        format!("/ExplanationOfBenefit?patient={}", other.patient_id),
        "/ExplanationOfBenefit?type=professional".into(),
        "/ExplanationOfBenefit?type=http://terminology.hl7.org/CodeSystem/claim-type|pharmacy,oral".into(),
        "/ExplanationOfBenefit?service-date=ge2022-01-01&service-date=lt2024".into(),
        "/ExplanationOfBenefit?service-start-date=gt2020-06".into(),
        "/ExplanationOfBenefit?billable-period-start=le2021-12-31".into(),
        "/ExplanationOfBenefit?_lastUpdated=gt2000-01-01&_count=5".into(),
        "/ExplanationOfBenefit?_include=ExplanationOfBenefit:coverage&_include:iterate=Coverage:payor&_count=4".into(),
        "/ExplanationOfBenefit?_include=ExplanationOfBenefit:provider&_include=ExplanationOfBenefit:care-team&_count=3".into(),
        format!("/Coverage?patient={p}&_include=Coverage:payor"),
        "/Coverage?_lastUpdated=ge2000".into(),
        format!("/Patient?_id={p}"),
        format!("/Patient?identifier={}", member.member_id),
        format!("/Patient?name={}", &member.family[..2]),
        format!("/Patient?family:exact={}&birthdate={}", member.family, member.birth_date),
        format!("/Patient?given:contains={}&gender=male,female,other,unknown", &member.given[1..3]),
        "/Practitioner?_count=3".into(),
        "/Practitioner?name=a".into(),
        "/Organization?name=health".into(),
        "/Organization?address=tx".into(),
        "/RelatedPerson?_lastUpdated=gt2000".into(),
    ];
    for query in &queries {
        let on_redb = answer(&redb, query, &token).await;
        let on_dynamo = answer(&dynamo, query, &token).await;
        assert_eq!(on_redb.0, 200, "{query} on redb");
        assert_eq!(
            on_redb, on_dynamo,
            "{query} differs between redb and DynamoDB"
        );
    }
    // The identifier and practitioner look-ups hit the look-up partitions on both.
    let listing = ListQuery::new(Partition::Type(fhir::ResourceType::Practitioner), 1);
    let practitioners = ResourceStore::list(redb_store.as_ref(), listing)
        .await
        .expect("list practitioners");
    let npi = practitioners
        .entries
        .first()
        .and_then(|(_, r)| serde_json::from_str::<Value>(&r.body).ok())
        .and_then(|r| r["identifier"][0]["value"].as_str().map(str::to_owned))
        .expect("a practitioner NPI");
    let by_npi = format!("/Practitioner?identifier={npi}");
    let on_dynamo = answer(&dynamo, &by_npi, &token).await;
    assert_eq!(on_dynamo.1.len(), 1, "{by_npi}");
    assert_eq!(answer(&redb, &by_npi, &token).await, on_dynamo);
}
