//! `p2p-requests` on AWS: a request recorded in DynamoDB (moto) is run by the
//! scheduled function with this plan's key read from Secrets Manager (moto), against
//! another plan's API (a stand-in server here: discovery, a token for a signed
//! assertion, then either PDex's bulk pair — `$bulk-member-match`, `$davinci-data-export`,
//! status URLs and NDJSON files — when its `/metadata` lists them, or `$member-match`
//! and `$everything` when it has no CapabilityStatement), and the answer lands in the
//! table under the other plan's namespace with its Provenance.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use bulk_export_fn::p2p::P2pRequestsFunction;
use fhir::ResourceType;
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use member_consent::{ChangedBy, Sharing};
use payer_to_payer::asking::{self, OtherPayer, RequestState};
use payer_to_payer::remote::AssertionKey;
use serde_json::{Value, json};
use store_dynamodb::{DynamoStore, create_table};

const CLIENT_ID: &str = "new-plan-at-old-plan";

/// The other plan: what it answers, checking what a real one checks first. With
/// `bulk`, its CapabilityStatement lists PDex's bulk pair and it serves them.
async fn other_plan(bulk: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token_endpoint = format!("{base}/token");
    let mut app = Router::new()
        .route(
            "/.well-known/smart-configuration",
            get(move || {
                let token_endpoint = token_endpoint.clone();
                async move { json!({"token_endpoint": token_endpoint}).to_string() }
            }),
        )
        .route("/token", post(token))
        .route("/Patient/{operation}", post(member_match))
        .route("/Patient/{id}/{operation}", get(everything));
    if bulk {
        let at = |path: &str| format!("{base}{path}");
        let (match_status, export_status, claims, coverage) = (
            at("/status/match-1"),
            at("/status/export-1"),
            at("/files/ExplanationOfBenefit-1.ndjson"),
            at("/files/Coverage-1.ndjson"),
        );
        app = app
            .route(
                "/metadata",
                get(|| async {
                    json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "operation": [
                        {"name": "bulk-member-match", "definition": "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/bulk-member-match"},
                        {"name": "davinci-data-export", "definition": "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/davinci-data-export"}]}]})
                    .to_string()
                }),
            )
            .route(
                "/Group/{operation}",
                post(move |headers: HeaderMap, body: Bytes| {
                    let location = match_status.clone();
                    async move { bulk_member_match(&headers, &body, &location) }
                }),
            )
            .route(
                "/Group/{id}/{operation}",
                get(
                    move |headers: HeaderMap, uri: axum::http::Uri| {
                        let location = export_status.clone();
                        async move { data_export(&headers, &uri, &location) }
                    },
                ),
            )
            .route(
                "/status/{job}",
                get(move |headers: HeaderMap, job: axum::extract::Path<String>| {
                    let (claims, coverage) = (claims.clone(), coverage.clone());
                    async move { status(&headers, &job, &claims, &coverage) }
                }),
            )
            .route("/files/{file}", get(file));
    }
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

type Answer = (StatusCode, [(&'static str, String); 2], String);

fn answer(status: StatusCode, location: &str, body: String) -> Answer {
    (
        status,
        [
            ("content-location", location.to_owned()),
            ("retry-after", "0".to_owned()),
        ],
        body,
    )
}

fn bulk_member_match(headers: &HeaderMap, body: &[u8], location: &str) -> Answer {
    let parameters: Value = serde_json::from_slice(body).unwrap_or_default();
    let bundle = &parameters["parameter"][0];
    let card = &bundle["part"][1]["resource"]["subscriberId"];
    if !authorized(headers) || bundle["name"] != "MemberBundle" || card != "SUB-7001" {
        return answer(StatusCode::BAD_REQUEST, "", String::new());
    }
    answer(StatusCode::ACCEPTED, location, String::new())
}

fn data_export(headers: &HeaderMap, uri: &axum::http::Uri, location: &str) -> Answer {
    let query = uri.query().unwrap_or_default();
    let asked_right = uri.path() == "/Group/g-old-1/$davinci-data-export"
        && query.contains("exportType=hl7.fhir.us.davinci-pdex%23payertopayer")
        && headers.get("prefer").and_then(|v| v.to_str().ok()) == Some("respond-async");
    if !authorized(headers) || !asked_right {
        return answer(StatusCode::BAD_REQUEST, "", String::new());
    }
    answer(StatusCode::ACCEPTED, location, String::new())
}

fn status(headers: &HeaderMap, job: &str, claims: &str, coverage: &str) -> Answer {
    if !authorized(headers) {
        return answer(StatusCode::UNAUTHORIZED, "", String::new());
    }
    let body = match job {
        "match-1" => json!({"resourceType": "Parameters", "parameter": [
            {"name": "MatchedMembers", "resource": {"resourceType": "Group", "id": "g-old-1",
                "code": {"coding": [{"code": "match"}]},
                "member": [{"entity": {"reference": "Patient/old-9"}}]}}]}),
        _ => json!({"transactionTime": "2027-01-08T10:00:00Z", "requiresAccessToken": true,
            "output": [{"type": "Coverage", "url": coverage}, {"type": "ExplanationOfBenefit", "url": claims}],
            "error": []}),
    };
    answer(StatusCode::OK, "", body.to_string())
}

async fn file(headers: HeaderMap, name: axum::extract::Path<String>) -> (StatusCode, String) {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let lines: Vec<Value> = if name.starts_with("Coverage") {
        vec![
            json!({"resourceType": "Coverage", "id": "c1", "status": "active",
                    "beneficiary": {"reference": "Patient/old-9"}}),
        ]
    } else {
        (1..=3)
            .map(|n| json!({"resourceType": "ExplanationOfBenefit", "id": format!("bulk-e{n}"),
                            "status": "active", "patient": {"reference": "Patient/old-9"},
                            "insurance": [{"focal": true, "coverage": {"reference": "Coverage/c1"}}]}))
            .collect()
    };
    let ndjson: String = lines.iter().map(|l| format!("{l}\n")).collect();
    (StatusCode::OK, ndjson)
}

async fn token(body: Bytes) -> (StatusCode, String) {
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let assertion_from_us = field("client_assertion")
        .and_then(|jwt| jwt.split('.').nth(1).map(str::to_owned))
        .and_then(|claims| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .ok()
        })
        .and_then(|claims| serde_json::from_slice::<Value>(&claims).ok())
        .is_some_and(|claims| claims["iss"] == CLIENT_ID && claims["sub"] == CLIENT_ID);
    if field("grant_type").as_deref() != Some("client_credentials") || !assertion_from_us {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_client"}"#.into(),
        );
    }
    (
        StatusCode::OK,
        json!({"access_token": "t", "token_type": "bearer", "expires_in": 300}).to_string(),
    )
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer t")
}

async fn member_match(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let parameters: Value = serde_json::from_slice(&body).unwrap_or_default();
    let card = &parameters["parameter"][1]["resource"]["subscriberId"];
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    if card != "SUB-7001" {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", "diagnostics": "No match"}]})
            .to_string(),
        );
    }
    (
        StatusCode::OK,
        json!({"resourceType": "Parameters", "parameter": [
        {"name": "MemberIdentifier", "valueIdentifier": {"value": "MB-9"}},
        {"name": "MemberId", "valueReference": {"reference": "Patient/old-9"}}]})
        .to_string(),
    )
}

async fn everything(headers: HeaderMap) -> (StatusCode, String) {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let resource = |r: Value| json!({"resource": r});
    (StatusCode::OK, json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        resource(json!({"resourceType": "Patient", "id": "old-9"})),
        resource(json!({"resourceType": "Coverage", "id": "c1", "status": "active",
                        "beneficiary": {"reference": "Patient/old-9"}})),
        resource(json!({"resourceType": "ExplanationOfBenefit", "id": "e1", "status": "active",
                        "patient": {"reference": "Patient/old-9"},
                        "insurance": [{"focal": true, "coverage": {"reference": "Coverage/c1"}}]})),
    ]}).to_string())
}

#[tokio::test]
async fn a_request_due_is_run_with_the_key_from_secrets_manager_and_imported_into_dynamodb() {
    run_against(false).await;
}

#[tokio::test]
async fn a_plan_with_pdex_bulk_is_asked_in_bulk_and_its_files_are_streamed_into_dynamodb() {
    run_against(true).await;
}

/// One request run by the scheduled function against the stand-in (`bulk`: with
/// PDex's bulk pair; else only `$member-match` and `$everything`).
async fn run_against(bulk: bool) {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let table = format!("p2p-requests-{bulk}-{}", std::process::id());
    create_table(&dynamodb, &table).await.unwrap();
    let store = DynamoStore::new(dynamodb.clone(), table.clone());
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let pem = backend_auth::testing::es384_private_pem();
    assert!(AssertionKey::from_pem(&pem).is_ok());
    let secret = secrets
        .create_secret()
        .name(format!(
            "stack/payer-keys/oldplan-{bulk}-{}",
            std::process::id()
        ))
        .secret_string(pem)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    ResourceStore::put(
        &store,
        ResourceWrite::indexed(
            ResourceType::Patient,
            "m1",
            json!({"resourceType": "Patient", "id": "m1", "name": [{"family": "Núñez"}],
                   "birthDate": "1985-04-12", "gender": "female"}),
            WriteCondition::Always,
        ),
    )
    .await
    .unwrap();
    Sharing::PayerToPayer
        .set(&store, "m1", true, ChangedBy::Plan)
        .await
        .unwrap();
    let payer = OtherPayer {
        name: "oldplan".into(),
        base_url: other_plan(bulk).await,
        payer_id: "OLD01".into(),
        client_id: CLIENT_ID.into(),
        key: secret,
    };
    asking::add_payer(&store, &payer).await.unwrap();
    let now = fhir::clock::unix_now();
    let terms = asking::Terms {
        old_member_id: "SUB-7001".into(),
        all_data: false,
        concurrent: false,
    };
    asking::request(&store, "m1", "oldplan", terms, now)
        .await
        .unwrap();

    let function = P2pRequestsFunction::new(store.clone(), secrets);
    let summary = function.run(now).await.unwrap();
    assert_eq!(summary["ran"], 1, "{summary}");
    assert_eq!(summary["done"], 1, "{summary}");

    // The bulk export's claims, or `$everything`'s one.
    let (claim_id, claims) = if bulk { ("bulk-e1", 3) } else { ("e1", 1) };
    let request = asking::get_request(&store, "m1", "oldplan")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.received, claims + 1, "{request:?}");
    let claim = ResourceStore::get(
        &store,
        ResourceType::ExplanationOfBenefit,
        &format!("oldplan.{claim_id}"),
    )
    .await
    .unwrap()
    .expect("the received claim");
    let claim: Value = serde_json::from_str(&claim.body).unwrap();
    assert_eq!(claim["patient"]["reference"], "Patient/m1");
    assert_eq!(
        claim["insurance"][0]["coverage"]["reference"],
        "Coverage/oldplan.c1"
    );
    assert_eq!(claim["meta"]["source"], payer.base_url);
    let provenance = ResourceStore::get(
        &store,
        ResourceType::Provenance,
        &payer_to_payer::import::namespaced_id(
            "oldplan",
            &format!("prov-ExplanationOfBenefit-{claim_id}"),
        ),
    )
    .await
    .unwrap();
    assert!(
        provenance.is_some(),
        "every received resource has its Provenance"
    );
    let request = asking::get_request(&store, "m1", "oldplan")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.state, RequestState::Done);

    let again = function.run(now + 1).await.unwrap();
    assert_eq!(again["ran"], 0, "nothing is due any more");
    let _ = dynamodb.delete_table().table_name(&table).send().await;
}
