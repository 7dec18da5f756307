//! Payer-to-Payer end to end on two local servers: the old plan answers, the new plan
//! asks (CMS-0057-F, 42 CFR 422.121(b)) with PDex's bulk pair, which the old plan's
//! `/metadata` lists: `$bulk-member-match`, then `$davinci-data-export`, its files
//! streamed into the new plan's store. The member's history moves only with their
//! opt-in, lands under the old plan's namespace with its Provenance, leaves out what a
//! `#sensitive` consent excludes, and shows in the member's Patient Access API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backend_auth::NewBackendClient;
use fhir::ResourceType;
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use member_consent::Sharing;
use patient_access::p2p_asking;
use payer_to_payer::asking::{self, OtherPayer, RequestState};
use payer_to_payer::remote::AssertionKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use smart_auth::AccessClaims;

use crate::member_match::{THIS_PLAN as OLD_PLAN_PAYER_ID, seed, seed_claims};
use crate::provider_access::{Plan, start};
use crate::support::entry_ids;

/// Ana's Patient id at the new plan (the old plan's is `mm-ana`).
const ANA: &str = "new-ana";
/// Ana's card at the old plan.
const OLD_CARD: &str = "SUB-7001";

/// Registers `asker` as a payer client of `answerer` with a fresh key, and records the
/// answerer at the asker (`payers add`); returns the key file, which must outlive the
/// test's requests.
async fn connect(asker: &Plan, answerer: &Plan, name: &str) -> tempfile::NamedTempFile {
    let pem = backend_auth::testing::es384_private_pem();
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), &pem).unwrap();
    let jwks = AssertionKey::from_pem(&pem).unwrap().public_jwks();
    let client_id = backend_auth::clients::register(
        answerer.store.as_ref(),
        &NewBackendClient {
            name: format!("{name}'s asker"),
            jwks: Some(jwks),
            scope: "system/*.rs".into(),
            payer: true,
            ..NewBackendClient::default()
        },
    )
    .await
    .unwrap()
    .client_id;
    let payer = OtherPayer {
        name: name.into(),
        base_url: answerer.base.clone(),
        payer_id: OLD_PLAN_PAYER_ID.into(),
        client_id,
        key: key_file.path().display().to_string(),
    }
    .checked()
    .unwrap();
    asking::add_payer(asker.store.as_ref(), &payer)
        .await
        .unwrap();
    key_file
}

/// Ana as the new plan enrolled her: the same person, this plan's own ids.
async fn enrol_ana(new_plan: &Plan) {
    let patient = json!({"resourceType": "Patient", "id": ANA,
        "name": [{"family": "Núñez", "given": ["Ana"]}],
        "birthDate": "1985-04-12", "gender": "female"});
    new_plan
        .store
        .put(ResourceWrite::indexed(
            ResourceType::Patient,
            ANA,
            patient,
            WriteCondition::Always,
        ))
        .await
        .unwrap();
}

async fn opt(plan: &Plan, patient: &str, on: bool) {
    patient_access::sharing::set(plan.store.as_ref(), Sharing::PayerToPayer, patient, on)
        .await
        .unwrap();
}

/// What Ana's app reads at the new plan.
async fn read(plan: &Plan, path: &str) -> Value {
    let token = plan
        .issuer
        .mint(&AccessClaims::for_member(
            ANA,
            "ana-app",
            "patient/*.rs",
            Duration::from_secs(300),
        ))
        .unwrap();
    let response = plan
        .http
        .get(format!("{}{path}", plan.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    crate::support::capture(&body);
    body
}

async fn two_plans() -> (Plan, Plan, Vec<tempfile::NamedTempFile>) {
    let (old_plan, new_plan) = (start().await, start().await);
    seed(&old_plan).await;
    seed_claims(&old_plan).await;
    enrol_ana(&new_plan).await;
    // Each plan is a registered payer client of the other.
    let keys = vec![
        connect(&new_plan, &old_plan, "oldplan").await,
        connect(&old_plan, &new_plan, "newplan").await,
    ];
    (old_plan, new_plan, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_in_members_history_moves_with_its_provenance_and_without_sensitive_claims() {
    let (old_plan, new_plan, _keys) = two_plans().await;
    opt(&new_plan, ANA, true).await;

    let request = ask(&new_plan, OLD_CARD, false).await;
    assert_eq!(request.state, RequestState::Done, "{request:?}");
    assert!(request.received >= 2, "{request:?}");
    assert_eq!(request.progress, None, "nothing left to resume");
    // Asked in bulk, as the old plan's /metadata offers: it holds the match Group that
    // its $bulk-member-match made for the new plan, which $davinci-data-export read.
    let us = asking::payer(new_plan.store.as_ref(), "oldplan")
        .await
        .unwrap()
        .unwrap();
    let groups = bulk_export::members::of_client(old_plan.store.as_ref(), &us.client_id)
        .await
        .unwrap();
    assert_eq!(groups.len(), 1, "one $bulk-member-match: {groups:?}");

    let claims = read(&new_plan, &format!("/ExplanationOfBenefit?patient={ANA}")).await;
    let claim_ids = entry_ids(&claims, "match");
    assert!(
        claim_ids.contains(&"ExplanationOfBenefit/oldplan.mm-eob-diabetes".to_owned()),
        "{claim_ids:?}"
    );
    assert!(
        !claim_ids.contains(&"ExplanationOfBenefit/oldplan.mm-eob-sud".to_owned()),
        "#sensitive: the substance-use claim stays at the old plan"
    );
    assert!(
        !claim_ids.contains(&"ExplanationOfBenefit/oldplan.mm-eob-old".to_owned()),
        "five years only"
    );
    let claim = claims["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["id"] == "oldplan.mm-eob-diabetes")
        .unwrap();
    assert_eq!(claim["meta"]["source"], old_plan.base, "where it came from");
    assert_eq!(claim["meta"]["tag"][0]["code"], "oldplan");
    assert!(
        claim.get("payment").is_none(),
        "non-financial, as the old plan sent it"
    );

    let coverage = read(&new_plan, &format!("/Coverage?patient={ANA}")).await;
    assert!(entry_ids(&coverage, "match").contains(&"Coverage/oldplan.mm-cov-ana".to_owned()));

    let provenance = read(
        &new_plan,
        "/Provenance?target=ExplanationOfBenefit/oldplan.mm-eob-diabetes",
    )
    .await;
    let provenance = &provenance["entry"][0]["resource"];
    assert_eq!(provenance["resourceType"], "Provenance");
    assert_eq!(
        provenance["agent"][0]["who"]["identifier"]["value"],
        OLD_PLAN_PAYER_ID
    );
    assert!(
        provenance["entity"][0]["what"]["reference"]
            .as_str()
            .unwrap()
            .ends_with("/ExplanationOfBenefit/mm-eob-diabetes")
    );
}

/// The new plan asks the old one for Ana's history with her old `card`, now.
async fn ask(new_plan: &Plan, card: &str, all_data: bool) -> asking::ExchangeRequest {
    let terms = asking::Terms {
        old_member_id: card.into(),
        all_data,
        concurrent: false,
    };
    p2p_asking::request_and_run(new_plan.store.as_ref(), ANA, "oldplan", terms)
        .await
        .unwrap()
}

async fn claim_count(plan: &Plan) -> usize {
    entry_ids(
        &read(plan, &format!("/ExplanationOfBenefit?patient={ANA}")).await,
        "match",
    )
    .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_again_replaces_what_came_before_and_duplicates_nothing() {
    let (_old_plan, new_plan, _keys) = two_plans().await;
    opt(&new_plan, ANA, true).await;
    ask(&new_plan, OLD_CARD, true).await;
    let first = claim_count(&new_plan).await;
    // A run cut off midway and run again, or a quarterly repeat: the same ids.
    ask(&new_plan, OLD_CARD, true).await;
    assert_eq!(claim_count(&new_plan).await, first);
    assert_eq!(first, 2, "#regular brings the substance-use claim too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_member_opts_out_a_new_request_brings_nothing() {
    let (old_plan, new_plan, _keys) = two_plans().await;
    opt(&new_plan, ANA, false).await;
    seed_claims(&old_plan).await;
    let request = ask(&new_plan, OLD_CARD, false).await;
    assert_eq!(request.state, RequestState::NotOptedIn);
    assert!(
        entry_ids(
            &read(&new_plan, &format!("/ExplanationOfBenefit?patient={ANA}")).await,
            "match"
        )
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_card_ends_not_matched_and_an_unreachable_plan_waits_for_its_retry() {
    let (_old_plan, new_plan, _keys) = two_plans().await;
    opt(&new_plan, ANA, true).await;
    let wrong = ask(&new_plan, "SUB-0000", false).await;
    assert_eq!(wrong.state, RequestState::NotMatched, "{wrong:?}");

    // The old plan's server is gone: the request keeps its place and says why.
    let mut moved = asking::payer(new_plan.store.as_ref(), "oldplan")
        .await
        .unwrap()
        .unwrap();
    moved.base_url = "http://127.0.0.1:9".into();
    asking::add_payer(new_plan.store.as_ref(), &moved)
        .await
        .unwrap();
    let waiting = ask(&new_plan, OLD_CARD, false).await;
    assert_eq!(waiting.state, RequestState::Waiting, "{waiting:?}");
    assert_eq!(waiting.attempts, 1);
    assert!(waiting.next_attempt_at > waiting.updated_at);
    assert!(
        waiting
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("unavailable")
    );
}

/// A front of the old plan whose first download of a claims file stops halfway, as a
/// dropped connection does; everything else passes through, with the old plan's URLs
/// in answers (status URLs, manifest files) turned into the front's. The token request
/// goes to the old plan itself (its discovery is passed on as it is), so the signed
/// assertion names the old plan's token endpoint.
async fn cutting_front(old_base: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let cut = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = front.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (client, old, front, cut) = (
            client.clone(),
            old_base.clone(),
            base.clone(),
            Arc::clone(&cut),
        );
        async move { forward(&client, &old, &front, &cut, request).await }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    front
}

async fn forward(
    client: &reqwest::Client,
    old: &str,
    front: &str,
    cut: &AtomicBool,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 10 << 20).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut outgoing = client
        .request(parts.method.clone(), format!("{old}{path}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.unwrap();
    let mut reply = axum::http::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        let value = value.to_str().unwrap_or_default().replace(old, front);
        reply = reply.header(name, value);
    }
    let text = answer.text().await.unwrap();
    let text = if path.starts_with("/.well-known/") {
        text
    } else {
        text.replace(old, front)
    };
    let claims_file = path.starts_with("/bulk-files/") && path.contains("ExplanationOfBenefit");
    if claims_file && !cut.swap(true, Ordering::SeqCst) {
        let half = bytes::Bytes::copy_from_slice(&text.as_bytes()[..text.len() / 2]);
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
            vec![Ok(half), Err(std::io::Error::other("connection dropped"))];
        return reply
            .header(http::header::CONTENT_LENGTH, text.len())
            .body(axum::body::Body::from_stream(futures_util::stream::iter(
                chunks,
            )))
            .unwrap();
    }
    reply.body(axum::body::Body::from(text)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_off_midway_is_continued_by_the_next_run_without_duplicates() {
    let (old_plan, new_plan, _keys) = two_plans().await;
    opt(&new_plan, ANA, true).await;
    let mut through_front = asking::payer(new_plan.store.as_ref(), "oldplan")
        .await
        .unwrap()
        .unwrap();
    through_front.base_url = cutting_front(old_plan.base.clone()).await;
    asking::add_payer(new_plan.store.as_ref(), &through_front)
        .await
        .unwrap();

    // The claims file breaks off: the request waits for its retry, keeping its place.
    let cut_off = ask(&new_plan, OLD_CARD, true).await;
    assert_eq!(cut_off.state, RequestState::Waiting, "{cut_off:?}");
    assert_eq!(cut_off.attempts, 1);
    let progress = cut_off.progress.clone().expect("where the run stopped");
    assert!(progress.export_status.is_some(), "{progress:?}");
    assert!(
        progress
            .imported_files
            .iter()
            .all(|f| !f.contains("ExplanationOfBenefit")),
        "{progress:?}"
    );

    // The next run (the schedule's) continues the same export: no second match.
    let pem = std::fs::read_to_string(&through_front.key).unwrap();
    let resumed = payer_to_payer::remote::run_request(
        new_plan.store.as_ref(),
        &through_front,
        cut_off,
        Ok(pem),
        fhir::clock::unix_now(),
        &payer_to_payer::bulk_asking::Pace::default(),
    )
    .await
    .unwrap();
    assert_eq!(resumed.state, RequestState::Done, "{resumed:?}");
    let groups = bulk_export::members::of_client(old_plan.store.as_ref(), &through_front.client_id)
        .await
        .unwrap();
    assert_eq!(groups.len(), 1, "the same $bulk-member-match, continued");
    let claims = claim_count(&new_plan).await;
    assert_eq!(claims, 2, "both claims #regular allows, once each");

    // A whole new request brings the same resources, and nothing twice.
    let again = ask(&new_plan, OLD_CARD, true).await;
    assert_eq!(again.state, RequestState::Done, "{again:?}");
    assert_eq!(again.received, resumed.received);
    assert_eq!(claim_count(&new_plan).await, claims);
}
