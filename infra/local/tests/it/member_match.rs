//! Payer-to-Payer `POST /Patient/$member-match` (HRex) on the local server: another
//! plan's system, registered as a payer, authenticates with a signed assertion and
//! asks whether a person is this plan's member, with the old card and the member's
//! consent.

use backend_auth::NewBackendClient;
use backend_auth::testing::ClientKey;
use fhir::ResourceType;
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use member_consent::Sharing;
use reqwest::StatusCode;
use serde_json::{Value, json};

use std::time::Duration;

use crate::provider_access::{Plan, start};

const HREX_POLICY: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html";
/// This plan's payer id, as an old plan's card shows it.
pub(crate) const THIS_PLAN: &str = "PLAN01";

/// The plan's records: Ana (opted in), twins alike in every compared element under
/// one subscriber id (opted in), Ben (not opted in), and Cara, whose stored Coverage
/// is another carrier's card (coordination of benefits).
pub(crate) async fn seed(plan: &Plan) {
    let org = |id: &str, payer_id: &str| {
        json!({"resourceType": "Organization", "id": id, "name": id,
               "identifier": [{"type": {"coding": [{"code": "payerid"}]}, "value": payer_id}]})
    };
    let patient = |id: &str, family: &str, given: &str, birth: &str, gender: &str, mb: &str| {
        json!({"resourceType": "Patient", "id": id,
               "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
                               "system": "https://plan.example/member", "value": mb}],
               "name": [{"family": family, "given": [given, "María"]}],
               "birthDate": birth, "gender": gender})
    };
    let coverage = |id: &str, patient: &str, member: &str, subscriber: &str, org: &str| {
        json!({"resourceType": "Coverage", "id": id, "status": "active",
               "identifier": [{"value": member}], "subscriberId": subscriber,
               "beneficiary": {"reference": format!("Patient/{patient}")},
               "payor": [{"reference": format!("Organization/{org}")}]})
    };
    let resources = [
        org("org-this-plan", THIS_PLAN),
        org("org-other", "OTHER1"),
        patient("mm-ana", "Núñez", "Ana", "1985-04-12", "female", "MB-7001"),
        coverage(
            "mm-cov-ana",
            "mm-ana",
            "MB-7001",
            "SUB-7001",
            "org-this-plan",
        ),
        patient("mm-twin-1", "Lee", "Sam", "2001-01-01", "male", "MB-9001"),
        coverage(
            "mm-cov-t1",
            "mm-twin-1",
            "MB-9001",
            "SUB-9000",
            "org-this-plan",
        ),
        patient("mm-twin-2", "Lee", "Sam", "2001-01-01", "male", "MB-9002"),
        coverage(
            "mm-cov-t2",
            "mm-twin-2",
            "MB-9002",
            "SUB-9000",
            "org-this-plan",
        ),
        patient("mm-ben", "Okafor", "Ben", "1970-07-07", "male", "MB-8001"),
        coverage(
            "mm-cov-ben",
            "mm-ben",
            "MB-8001",
            "SUB-8001",
            "org-this-plan",
        ),
        patient("mm-cara", "Diaz", "Cara", "1992-03-03", "female", "MB-6001"),
        coverage(
            "mm-cov-cara",
            "mm-cara",
            "LMI-6001",
            "LMI-6001",
            "org-other",
        ),
    ];
    for resource in resources {
        let resource_type: ResourceType =
            resource["resourceType"].as_str().unwrap().parse().unwrap();
        let id = resource["id"].as_str().unwrap().to_owned();
        plan.store
            .put(ResourceWrite::indexed(
                resource_type,
                id,
                resource,
                WriteCondition::Always,
            ))
            .await
            .unwrap();
    }
    for member in ["mm-ana", "mm-twin-1", "mm-twin-2"] {
        assert!(
            patient_access::sharing::set(plan.store.as_ref(), Sharing::PayerToPayer, member, true)
                .await
                .unwrap()
        );
    }
}

/// An HRex Consent by the MemberPatient (`Patient/1`) with `policy` and the period.
fn consent(policy: &str, start: &str, end: &str) -> Value {
    json!({"resourceType": "Consent", "status": "active",
           "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
           "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
           "patient": {"reference": "Patient/1"},
           "performer": [{"reference": "Patient/1"}],
           "policy": [{"uri": format!("{HREX_POLICY}#{policy}")}],
           "provision": {"type": "permit", "period": {"start": start, "end": end}}})
}

fn current_consent() -> Value {
    consent("regular", "2020-01-01", "2099-12-31")
}

/// The member's demographics and old card, as the new plan sends them.
fn member_match(
    family: &str,
    given: &str,
    birth: &str,
    gender: &str,
    card: &str,
    consent: Value,
) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "MemberPatient", "resource": {"resourceType": "Patient", "id": "1",
            "name": [{"family": family, "given": [given]}], "birthDate": birth, "gender": gender}},
        {"name": "CoverageToMatch", "resource": {"resourceType": "Coverage", "id": "9",
            "status": "active", "subscriberId": card,
            "beneficiary": {"reference": "Patient/1"},
            "payor": [{"identifier": {"system": "http://example.org/payer-id", "value": THIS_PLAN}}]}},
        {"name": "CoverageToLink", "resource": {"resourceType": "Coverage", "id": "29",
            "status": "active", "subscriberId": "NEW-1", "beneficiary": {"reference": "Patient/1"},
            "payor": [{"identifier": {"value": "NEWPLAN"}}]}},
        {"name": "Consent", "resource": consent}
    ]})
}

fn ana(consent: Value) -> Value {
    member_match("Núñez", "Ana", "1985-04-12", "female", "SUB-7001", consent)
}

/// A plan with its records and a registered payer's token.
async fn plan_and_payer() -> (Plan, String) {
    let plan = start().await;
    seed(&plan).await;
    let key = ClientKey::es384("new-plan-1");
    let client = backend_auth::clients::register(
        plan.store.as_ref(),
        &NewBackendClient {
            name: "New Plan".into(),
            jwks: Some(key.jwks()),
            scope: "system/*.rs".into(),
            payer: true,
            ..NewBackendClient::default()
        },
    )
    .await
    .unwrap()
    .client_id;
    let token = plan.token(&key, &client).await;
    (plan, token)
}

async fn post(
    plan: &Plan,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = plan
        .http
        .post(format!("{}/Patient/$member-match", plan.base))
        .header("content-type", "application/fhir+json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

/// A 422 OperationOutcome; its text.
fn refusal(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert!(
        !body.to_string().contains("mm-"),
        "a refusal never names a Patient: {body}"
    );
    body["issue"][0]["diagnostics"].as_str().unwrap().to_owned()
}

fn parameter<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_match_answers_the_member_identifier_and_the_member_id() {
    let (plan, token) = plan_and_payer().await;
    let (status, _, body) = post(&plan, Some(&token), &ana(current_consent())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resourceType"], "Parameters");
    let identifier = &parameter(&body, "MemberIdentifier")["valueIdentifier"];
    assert_eq!(identifier["type"]["coding"][0]["code"], "UMB");
    assert_eq!(identifier["value"], "MB-7001");
    assert_eq!(
        parameter(&body, "MemberId")["valueReference"]["reference"],
        "Patient/mm-ana"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_accent_and_punctuation_differences_still_match() {
    let (plan, token) = plan_and_payer().await;
    let request = member_match(
        "NUNEZ",
        "ana",
        "1985-04-12",
        "female",
        "sub 7001",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        parameter(&body, "MemberId")["valueReference"]["reference"],
        "Patient/mm-ana"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_birth_date_is_refused_with_the_same_text_as_a_stranger() {
    let (plan, token) = plan_and_payer().await;
    let wrong_birth = member_match(
        "Núñez",
        "Ana",
        "1985-04-13",
        "female",
        "SUB-7001",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &wrong_birth).await;
    let text = refusal(status, &body);
    let stranger = member_match(
        "Nobody",
        "Known",
        "1950-01-01",
        "male",
        "NO-SUCH-CARD",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &stranger).await;
    assert_eq!(
        refusal(status, &body),
        text,
        "no match reads the same, member or not"
    );
    let nickname = member_match(
        "Núñez",
        "Annie",
        "1985-04-12",
        "female",
        "SUB-7001",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &nickname).await;
    assert_eq!(refusal(status, &body), text, "nicknames are not attempted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_alike_in_every_compared_element_are_not_matched() {
    let (plan, token) = plan_and_payer().await;
    let (status, _, body) = post(&plan, Some(&token), &ana(current_consent())).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a member alike no one else is matched: {body}"
    );
    let stranger = member_match(
        "Nobody",
        "Known",
        "1950-01-01",
        "male",
        "NO-SUCH-CARD",
        current_consent(),
    );
    let (status, _, body_stranger) = post(&plan, Some(&token), &stranger).await;
    let no_match = refusal(status, &body_stranger);
    let twins = member_match(
        "Lee",
        "Sam",
        "2001-01-01",
        "male",
        "SUB-9000",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &twins).await;
    assert_eq!(
        refusal(status, &body),
        no_match,
        "several matches read as no match"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_this_plan_records_for_another_carrier_is_not_matched() {
    let (plan, token) = plan_and_payer().await;
    patient_access::sharing::set(plan.store.as_ref(), Sharing::PayerToPayer, "mm-cara", true)
        .await
        .unwrap();
    let cara = member_match(
        "Diaz",
        "Cara",
        "1992-03-03",
        "female",
        "LMI-6001",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &cara).await;
    refusal(status, &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_wrong_consent_is_refused() {
    let (plan, token) = plan_and_payer().await;
    let expired = consent("regular", "2020-01-01", "2021-01-01");
    let (status, _, body) = post(&plan, Some(&token), &ana(expired)).await;
    assert!(refusal(status, &body).contains("period"));
    let unknown_policy = consent("everything", "2020-01-01", "2099-12-31");
    let (status, _, body) = post(&plan, Some(&token), &ana(unknown_policy)).await;
    assert!(refusal(status, &body).contains("policy"));
    let mut by_the_new_plan = current_consent();
    by_the_new_plan["performer"] = json!([{"reference": "Organization/new-plan"}]);
    let (status, _, body) = post(&plan, Some(&token), &ana(by_the_new_plan)).await;
    assert!(refusal(status, &body).contains("performer"));
    let sensitive_only = consent("sensitive", "2020-01-01", "2099-12-31");
    let (status, _, body) = post(&plan, Some(&token), &ana(sensitive_only)).await;
    assert_eq!(status, StatusCode::OK, "#sensitive is honoured: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_has_not_opted_in_is_refused_like_a_stranger() {
    let (plan, token) = plan_and_payer().await;
    let stranger = member_match(
        "Nobody",
        "Known",
        "1950-01-01",
        "male",
        "NO-SUCH-CARD",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &stranger).await;
    let no_match = refusal(status, &body);
    let ben = member_match(
        "Okafor",
        "Ben",
        "1970-07-07",
        "male",
        "SUB-8001",
        current_consent(),
    );
    let (status, _, body) = post(&plan, Some(&token), &ben).await;
    assert_eq!(refusal(status, &body), no_match);

    // The plan records Ben's opt-in (as `patient-access p2p opt-in` does): matched.
    let set =
        |on| patient_access::sharing::set(plan.store.as_ref(), Sharing::PayerToPayer, "mm-ben", on);
    assert!(set(true).await.unwrap());
    let (status, _, body) = post(&plan, Some(&token), &ben).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // And his opt-out: refused again.
    assert!(set(false).await.unwrap());
    let (status, _, body) = post(&plan, Some(&token), &ben).await;
    assert_eq!(refusal(status, &body), no_match);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_registered_as_payers_may_match() {
    let (plan, _) = plan_and_payer().await;
    let (status, headers, body) = post(&plan, None, &ana(current_consent())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(body["resourceType"], "OperationOutcome");

    let clinic_key = ClientKey::rs384("clinic-1");
    let clinic = plan.register(&clinic_key, "1234567893").await;
    let clinic_token = plan.token(&clinic_key, &clinic).await;
    let (status, _, body) = post(&plan, Some(&clinic_token), &ana(current_consent())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_members_ends_in_429_with_retry_after() {
    let (plan, token) = plan_and_payer().await;
    let budget = payer_to_payer::budget::DEFAULT_FAILURES_PER_HOUR;
    for guess in 0..budget {
        let card = format!("GUESS-{guess}");
        let request = member_match(
            "Núñez",
            "Ana",
            "1985-04-12",
            "female",
            &card,
            current_consent(),
        );
        let (status, _, body) = post(&plan, Some(&token), &request).await;
        refusal(status, &body);
    }
    // The budget is spent: even the right answer waits for the next hour.
    let (status, headers, body) = post(&plan, Some(&token), &ana(current_consent())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait));
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["code"], "throttled");
}

/// Three of Ana's claims: an ordinary one, a substance-use one, and one from 2014.
pub(crate) async fn seed_claims(plan: &Plan) {
    let eob = |id: &str, end: &str, diagnosis: &str| {
        json!({"resourceType": "ExplanationOfBenefit", "id": id, "status": "active", "use": "claim",
               "outcome": "complete",
               "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
               "insurer": {"reference": "Organization/org-this-plan"},
               "provider": {"reference": "Organization/org-this-plan"},
               "insurance": [{"focal": true, "coverage": {"reference": "Coverage/mm-cov-ana"}}],
               "patient": {"reference": "Patient/mm-ana"},
               "billablePeriod": {"start": end, "end": end}, "created": end,
               "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [
                   {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": diagnosis}]}}],
               "payment": {"amount": {"value": 80, "currency": "USD"}}})
    };
    for resource in [
        eob("mm-eob-diabetes", "2025-06-01", "E11.9"),
        eob("mm-eob-sud", "2025-07-01", "F10.20"),
        eob("mm-eob-old", "2014-03-01", "E11.9"),
    ] {
        let id = resource["id"].as_str().unwrap().to_owned();
        plan.store
            .put(ResourceWrite::indexed(
                ResourceType::ExplanationOfBenefit,
                id,
                resource,
                WriteCondition::Always,
            ))
            .await
            .unwrap();
    }
}

async fn everything(plan: &Plan, token: &str, patient: &str) -> (StatusCode, Value) {
    let response = plan
        .http
        .get(format!("{}/Patient/{patient}/$everything", plan.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// `Type/id` of an entry's resource.
fn reference(entry: &Value) -> String {
    format!(
        "{}/{}",
        entry["resource"]["resourceType"].as_str().unwrap(),
        entry["resource"]["id"].as_str().unwrap()
    )
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(reference)
        .collect()
}

/// The matches of a page (not its Provenance includes); none for an empty page.
fn matched_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(reference)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matched_member_s_everything_is_limited_by_the_match_and_the_consent() {
    let (plan, token) = plan_and_payer().await;
    seed_claims(&plan).await;
    let (status, _) = everything(&plan, &token, "mm-ana").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "not matched yet: like an unknown id"
    );

    let (status, _, _) = post(&plan, Some(&token), &ana(current_consent())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, bundle) = everything(&plan, &token, "mm-ana").await;
    assert_eq!(status, StatusCode::OK, "{bundle}");
    let all = ids(&bundle);
    assert!(all.contains(&"Patient/mm-ana".to_owned()));
    assert!(all.contains(&"Coverage/mm-cov-ana".to_owned()));
    assert!(all.contains(&"ExplanationOfBenefit/mm-eob-diabetes".to_owned()));
    assert!(
        all.contains(&"ExplanationOfBenefit/mm-eob-sud".to_owned()),
        "#regular: all data"
    );
    assert!(
        !all.contains(&"ExplanationOfBenefit/mm-eob-old".to_owned()),
        "five years only"
    );
    assert!(
        !bundle.to_string().contains("\"payment\""),
        "claims are non-financial (CARIN Basis)"
    );
    // Each resource comes with its PDex Provenance, included.
    let entries = bundle["entry"].as_array().unwrap();
    let mut matched = matched_ids(&bundle);
    let mut targets: Vec<String> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| {
            e["resource"]["target"][0]["reference"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    matched.sort();
    targets.sort();
    assert_eq!(matched, targets);
    assert_eq!(bundle["total"], matched.len());

    let sensitive = consent("sensitive", "2020-01-01", "2099-12-31");
    let (status, _, _) = post(&plan, Some(&token), &ana(sensitive)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, bundle) = everything(&plan, &token, "mm-ana").await;
    let all = ids(&bundle);
    assert!(all.contains(&"ExplanationOfBenefit/mm-eob-diabetes".to_owned()));
    assert!(
        !all.contains(&"ExplanationOfBenefit/mm-eob-sud".to_owned()),
        "#sensitive leaves out 42 CFR Part 2 data"
    );

    patient_access::sharing::set(plan.store.as_ref(), Sharing::PayerToPayer, "mm-ana", false)
        .await
        .unwrap();
    let (status, _) = everything(&plan, &token, "mm-ana").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "opted out: nothing more");
    let (status, _) = everything(&plan, &token, "mm-ben").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "never matched");
}

/// `$everything` pages through a long history: `_count` matches a page, the Patient
/// first, a `next` link until the end, and the pages together are the one-page answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_pages_through_a_long_history_with_next_links() {
    let (plan, token) = plan_and_payer().await;
    seed_claims(&plan).await;
    let (status, _, _) = post(&plan, Some(&token), &ana(current_consent())).await;
    assert_eq!(status, StatusCode::OK);
    let (_, whole) = everything(&plan, &token, "mm-ana").await;
    let next = |bundle: &Value| {
        bundle["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .map(|l| l["url"].as_str().unwrap().to_owned())
    };
    assert_eq!(next(&whole), None, "one page holds it all");

    let mut url = Some(format!("{}/Patient/mm-ana/$everything?_count=1", plan.base));
    let mut pages = Vec::new();
    while let Some(at) = url {
        let response = plan.http.get(&at).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        assert!(matched_ids(&page).len() <= 1, "{page}");
        assert!(page.get("total").is_none(), "a paged answer has no total");
        url = next(&page);
        pages.push(page);
        assert!(pages.len() < 20, "the pages end");
    }
    let paged: Vec<String> = pages.iter().flat_map(matched_ids).collect();
    assert_eq!(paged, matched_ids(&whole));
    assert_eq!(paged.first().map(String::as_str), Some("Patient/mm-ana"));

    // A token this server did not give, or a page size out of range: 400.
    for query in ["_page_token=bm90LWEtdHlwZXwx", "_count=0", "_count=5000"] {
        let response = plan
            .http
            .get(format!("{}/Patient/mm-ana/$everything?{query}", plan.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

/// PDex Prior Authorizations of Ana: one approved and in force, one denied (HCR01 A3).
async fn seed_prior_authorizations(plan: &Plan) {
    let pa = |id: &str, action: &str| {
        json!({"resourceType": "ExplanationOfBenefit", "id": id, "status": "active",
               "use": "preauthorization", "outcome": "complete", "created": "2026-01-01",
               "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
               "insurer": {"reference": "Organization/org-this-plan"},
               "provider": {"reference": "Organization/org-this-plan"},
               "insurance": [{"focal": true, "coverage": {"reference": "Coverage/mm-cov-ana"}}],
               "patient": {"reference": "Patient/mm-ana"},
               "billablePeriod": {"start": "2026-01-01", "end": "2027-12-31"},
               "preAuthRefPeriod": [{"start": "2026-01-01", "end": "2027-12-31"}],
               "adjudication": [{"extension": [{"url": fhir::systems::PDEX_REVIEW_ACTION, "extension": [
                   {"url": fhir::systems::PDEX_REVIEW_ACTION_CODE, "valueCodeableConcept": {"coding": [
                       {"system": fhir::systems::X12_ACTION_CODE, "code": action}]}}]}],
                   "category": {"coding": [{"code": "submitted"}]}}]})
    };
    for resource in [pa("mm-pa-approved", "A1"), pa("mm-pa-denied", "A3")] {
        let id = resource["id"].as_str().unwrap().to_owned();
        plan.store
            .put(ResourceWrite::indexed(
                ResourceType::ExplanationOfBenefit,
                id,
                resource,
                WriteCondition::Always,
            ))
            .await
            .unwrap();
    }
}

/// A payer client registered with this plan: its id and a token.
async fn payer(plan: &Plan, name: &str) -> (String, String) {
    let key = ClientKey::es384(name);
    let client = backend_auth::clients::register(
        plan.store.as_ref(),
        &NewBackendClient {
            name: name.into(),
            jwks: Some(key.jwks()),
            scope: "system/*.rs".into(),
            payer: true,
            ..NewBackendClient::default()
        },
    )
    .await
    .unwrap()
    .client_id;
    let token = plan.token(&key, &client).await;
    (client, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn davinci_data_export_sends_a_match_groups_opted_in_members_as_their_consent_allows() {
    let plan = start().await;
    seed(&plan).await;
    seed_claims(&plan).await;
    seed_prior_authorizations(&plan).await;
    let (new_plan, token) = payer(&plan, "New Plan").await;
    let (_, other_token) = payer(&plan, "Other Plan").await;
    // The new plan's match Group (what $bulk-member-match records): Ana under a
    // #sensitive consent, Ben (never opted in), and a twin whose consent has ended.
    let member = |patient: &str, policy, end: &str| bulk_export::members::MatchedMember {
        patient: patient.into(),
        policy,
        consent_end: Some(end.into()),
    };
    let group = bulk_export::members::create(
        plan.store.as_ref(),
        &new_plan,
        &[
            member(
                "mm-ana",
                bulk_export::p2p::ConsentPolicy::Sensitive,
                "2099-12-31",
            ),
            member(
                "mm-ben",
                bulk_export::p2p::ConsentPolicy::Regular,
                "2099-12-31",
            ),
            member(
                "mm-twin-1",
                bulk_export::p2p::ConsentPolicy::Regular,
                "2021-01-01",
            ),
        ],
        fhir::clock::unix_now(),
    )
    .await
    .unwrap();
    let path = format!("/Group/{}/$davinci-data-export", group.id);
    // `#` is a URL's fragment delimiter: the value is percent-encoded.
    let p2p = "exportType=hl7.fhir.us.davinci-pdex%23payertopayer";

    // The rules of the operation.
    let status = |r: reqwest::Response| r.status();
    assert_eq!(
        status(plan.get(&path, Some(&token), true).await),
        StatusCode::BAD_REQUEST,
        "exportType is required"
    );
    assert_eq!(
        status(
            plan.get(
                &format!("{path}?{p2p}&_until=2026-01-01"),
                Some(&token),
                true
            )
            .await
        ),
        StatusCode::BAD_REQUEST,
        "an unsupported parameter is refused"
    );
    assert_eq!(
        status(
            plan.get(&format!("{path}?{p2p}"), Some(&other_token), true)
                .await
        ),
        StatusCode::NOT_FOUND,
        "another payer's Group is like a missing one"
    );
    assert_eq!(
        status(plan.get(&format!("{path}?{p2p}"), None, true).await),
        StatusCode::UNAUTHORIZED
    );

    let manifest = plan.export_at(&format!("{path}?{p2p}"), &token).await;
    let resources = plan.download(&token, &manifest).await;
    let mut sent: Vec<String> = resources
        .iter()
        .filter(|r| r["resourceType"] != "Provenance")
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            "Coverage/mm-cov-ana",
            // The ordinary claim and the approved prior authorization; not the
            // substance-use claim (#sensitive), the 2014 claim (five years), the denial.
            "ExplanationOfBenefit/mm-eob-diabetes",
            "ExplanationOfBenefit/mm-pa-approved",
            "Patient/mm-ana",
        ],
        "only the opted-in member with a live consent"
    );
    assert!(
        !resources.iter().any(|r| r.get("payment").is_some()),
        "non-financial"
    );
    // One PDex Provenance for each resource sent.
    let mut targets: Vec<String> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Provenance")
        .map(|r| r["target"][0]["reference"].as_str().unwrap().to_owned())
        .collect();
    targets.sort();
    assert_eq!(targets, sent);

    // `_type` narrows, `_since` after every change finds nothing.
    let manifest = plan
        .export_at(&format!("{path}?{p2p}&_type=Patient"), &token)
        .await;
    let only: Vec<Value> = plan.download(&token, &manifest).await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["id"], "mm-ana");
    let manifest = plan
        .export_at(&format!("{path}?{p2p}&_since=2099-01-01T00:00:00Z"), &token)
        .await;
    assert!(plan.download(&token, &manifest).await.is_empty());

    // Ana opts out: the next export leaves her out too.
    patient_access::sharing::set(plan.store.as_ref(), Sharing::PayerToPayer, "mm-ana", false)
        .await
        .unwrap();
    let manifest = plan.export_at(&format!("{path}?{p2p}"), &token).await;
    assert!(plan.download(&token, &manifest).await.is_empty());
}

/// One `MemberBundle` of a `$bulk-member-match` request (the parts of `$member-match`).
fn member_bundle(request: Value) -> Value {
    let parts: Vec<Value> = request["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "CoverageToLink")
        .cloned()
        .collect();
    json!({"name": "MemberBundle", "part": parts})
}

async fn post_bulk(plan: &Plan, token: &str, body: &Value) -> reqwest::Response {
    plan.http
        .post(format!("{}/Group/$bulk-member-match", plan.base))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .header("prefer", "respond-async")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn group_of<'a>(answer: &'a Value, name: &str) -> &'a Value {
    &parameter(answer, name)["resource"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_member_match_answers_three_groups_and_the_matched_one_is_exported() {
    let plan = start().await;
    seed(&plan).await;
    seed_claims(&plan).await;
    let (_, token) = payer(&plan, "New Plan").await;
    let (_, other_token) = payer(&plan, "Other Plan").await;
    let stranger = member_match(
        "Nobody",
        "Ann",
        "1990-01-01",
        "female",
        "SUB-0000",
        current_consent(),
    );
    let ben = member_match(
        "Okafor",
        "Ben",
        "1970-07-07",
        "male",
        "SUB-8001",
        current_consent(),
    );
    let expired = ana(consent("regular", "2020-01-01", "2021-01-01"));
    let request = json!({"resourceType": "Parameters", "parameter": [
        member_bundle(ana(consent("sensitive", "2020-01-01", "2099-12-31"))),
        member_bundle(stranger),
        member_bundle(ben),
        member_bundle(expired),
    ]});

    // Bad input is refused whole, naming the member; only payers may ask.
    let broken = json!({"resourceType": "Parameters", "parameter": [
        member_bundle(ana(current_consent())),
        {"name": "MemberBundle", "part": []}
    ]});
    let response = post_bulk(&plan, &token, &broken).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("MemberBundle 1"));
    let clinic_key = ClientKey::es384("clinic");
    let clinic = plan.register(&clinic_key, "1234567893").await;
    let clinic_token = plan.token(&clinic_key, &clinic).await;
    assert_eq!(
        post_bulk(&plan, &clinic_token, &request).await.status(),
        StatusCode::FORBIDDEN
    );

    // Asynchronous: 202 and a status URL, polled to the answer.
    let response = post_bulk(&plan, &token, &request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let status_url = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        status_url.contains("/Group/$bulk-member-match/"),
        "{status_url}"
    );
    assert_eq!(
        plan.get(&status_url, Some(&other_token), false)
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "another payer's job is like none"
    );
    let mut answer = Value::Null;
    for _ in 0..300 {
        let response = plan.get(&status_url, Some(&token), false).await;
        match response.status() {
            StatusCode::ACCEPTED => tokio::time::sleep(Duration::from_millis(100)).await,
            StatusCode::OK => {
                answer = response.json().await.unwrap();
                break;
            }
            other => panic!("status {other}: {:?}", response.text().await),
        }
    }
    assert_eq!(answer["resourceType"], "Parameters", "{answer}");
    let matched = group_of(&answer, "ResourceIdentifier");
    assert_eq!(matched["code"]["coding"][0]["code"], "match");
    assert_eq!(matched["member"].as_array().unwrap().len(), 1);
    assert_eq!(
        matched["member"][0]["entity"]["reference"],
        "Patient/mm-ana"
    );
    let no_match = group_of(&answer, "NoMatch");
    assert_eq!(no_match["code"]["coding"][0]["code"], "nomatch");
    assert_eq!(
        no_match["quantity"], 2,
        "the stranger, and Ben who never opted in, alike"
    );
    let constrained = group_of(&answer, "ConsentConstraint");
    assert_eq!(constrained["quantity"], 1, "the expired consent");
    assert!(
        !answer.to_string().contains("mm-ben"),
        "a refusal never names a Patient"
    );

    // The matched Group is this payer's to read (PDex), and no one else's.
    let group_id = matched["id"].as_str().unwrap();
    let read = plan
        .get(&format!("/Group/{group_id}"), Some(&token), false)
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["member"][0]["entity"]["reference"], "Patient/mm-ana");
    assert_eq!(read["code"]["coding"][0]["code"], "match");
    assert_eq!(
        plan.get(&format!("/Group/{group_id}"), Some(&other_token), false)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // A search lists a payer's own match Groups, and only those.
    let listed = |bundle: Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mine: Value = plan
        .get("/Group", Some(&token), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed(mine), [group_id.to_owned()]);
    let theirs: Value = plan
        .get("/Group", Some(&other_token), false)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed(theirs).is_empty());

    // The matched Group is exported with the consent it was matched under (#sensitive).
    let manifest = plan
        .export_at(
            &format!(
                "/Group/{group_id}/$davinci-data-export?exportType=hl7.fhir.us.davinci-pdex%23payertopayer"
            ),
            &token,
        )
        .await;
    let mut sent: Vec<String> = plan
        .download(&token, &manifest)
        .await
        .iter()
        .filter(|r| r["resourceType"] != "Provenance")
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            "Coverage/mm-cov-ana",
            "ExplanationOfBenefit/mm-eob-diabetes",
            "Patient/mm-ana"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_request_is_no_way_around_the_failed_match_budget() {
    let plan = start().await;
    seed(&plan).await;
    let (_, token) = payer(&plan, "Guessing Plan").await;
    // 20 guesses (the hourly budget), then the real member: by then the budget is
    // spent, so she is not even looked up and comes back not matched.
    let mut bundles: Vec<Value> = (0..payer_to_payer::budget::DEFAULT_FAILURES_PER_HOUR)
        .map(|n| {
            member_bundle(member_match(
                "Núñez",
                "Ana",
                "1985-04-12",
                "female",
                &format!("SUB-GUESS-{n}"),
                current_consent(),
            ))
        })
        .collect();
    bundles.push(member_bundle(ana(current_consent())));
    let request = json!({"resourceType": "Parameters", "parameter": bundles});
    let response = post_bulk(&plan, &token, &request).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let status_url = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut answer = Value::Null;
    for _ in 0..300 {
        let response = plan.get(&status_url, Some(&token), false).await;
        if response.status() == StatusCode::OK {
            answer = response.json().await.unwrap();
            break;
        }
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(group_of(&answer, "ResourceIdentifier")["quantity"], 0);
    assert_eq!(group_of(&answer, "NoMatch")["quantity"], 21);
    // And the next request, bulk or single, waits for the next hour.
    let again = post_bulk(&plan, &token, &request).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers().contains_key("retry-after"));
    let (status, _, _) = post(&plan, Some(&token), &ana(current_consent())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_client_cannot_export_or_read_a_match_group() {
    let plan = start().await;
    seed(&plan).await;
    let (new_plan, _) = payer(&plan, "New Plan").await;
    let group = bulk_export::members::create(
        plan.store.as_ref(),
        &new_plan,
        &[bulk_export::members::MatchedMember {
            patient: "mm-ana".into(),
            policy: bulk_export::p2p::ConsentPolicy::Regular,
            consent_end: None,
        }],
        fhir::clock::unix_now(),
    )
    .await
    .unwrap();
    let key = ClientKey::es384("clinic");
    let clinic = plan.register(&key, "1234567893").await;
    let clinic_token = plan.token(&key, &clinic).await;
    let export = format!(
        "/Group/{}/$davinci-data-export?exportType=hl7.fhir.us.davinci-pdex%23payertopayer",
        group.id
    );
    assert_eq!(
        plan.get(&export, Some(&clinic_token), true).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        plan.get(&format!("/Group/{}", group.id), Some(&clinic_token), false)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

/// A sensitive-code list that is neither `default` nor a list stops `serve` before it
/// answers anyone: sharing under a list nobody chose is not an option.
#[test]
fn serve_refuses_a_sensitive_code_list_nobody_chose() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("sensitive-codes.json");
    std::fs::write(&list, "defualt").unwrap();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_patient-access"))
        .args(["serve", "--no-demo", "--port", "0", "--data"])
        .arg(dir.path().join("data"))
        .arg("--sensitive-codes")
        .arg(&list)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("serve started with a sensitive-code list nobody chose");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("sensitive-codes.json"), "{stderr}");
}
