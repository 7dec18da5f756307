//! The trigger contracts, on the fixtures in `events/` (the same files `cargo lambda
//! invoke` sends), and the attack cases of member-auth.md §8.C that a single trigger
//! decides.

use crate::support::*;
use member_signin::triggers::{ADMIN_SCOPE, CODE_NAMESPACE, FAILURE_NAMESPACE};
use member_signin::{TriggerError, handle_trigger};
use serde_json::{Value, json};

const DEFINE_START: &str = include_str!("../../../../events/cognito-define-start.json");
const DEFINE_AFTER_DEMOGRAPHICS: &str =
    include_str!("../../../../events/cognito-define-after-demographics.json");
const DEFINE_COMPLETE: &str = include_str!("../../../../events/cognito-define-complete.json");
const CREATE_DEMOGRAPHICS: &str =
    include_str!("../../../../events/cognito-create-demographics.json");
const CREATE_EMAIL_OTP: &str = include_str!("../../../../events/cognito-create-email-otp.json");
const CREATE_CONSENT: &str = include_str!("../../../../events/cognito-create-consent.json");
const VERIFY_DEMOGRAPHICS: &str =
    include_str!("../../../../events/cognito-verify-demographics.json");
const VERIFY_EMAIL_OTP: &str = include_str!("../../../../events/cognito-verify-email-otp.json");
const VERIFY_CONSENT: &str = include_str!("../../../../events/cognito-verify-consent.json");
const PRETOKEN_AUTHENTICATION: &str =
    include_str!("../../../../events/cognito-pretoken-authentication.json");
const PRETOKEN_REFRESH: &str = include_str!("../../../../events/cognito-pretoken-refresh.json");
const PRETOKEN_CLIENT_CREDENTIALS: &str =
    include_str!("../../../../events/cognito-pretoken-client-credentials.json");

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

async fn run(ports: &Ports, event: Value) -> Result<Value, TriggerError> {
    handle_trigger(event, ports)
        .await
        .map(|mut e| e["response"].take())
}

async fn respond(ports: &Ports, event: Value) -> Value {
    run(ports, event)
        .await
        .unwrap_or_else(|e| panic!("trigger failed: {e}"))
}

fn entry(metadata: &str, ok: bool) -> Value {
    json!({ "challengeName": "CUSTOM_CHALLENGE", "challengeResult": ok, "challengeMetadata": metadata })
}

fn define_with(session: Value) -> Value {
    let mut event = fixture(DEFINE_COMPLETE);
    event["request"]["session"] = session;
    event
}

fn issues_tokens(response: &Value) -> bool {
    response["issueTokens"] == json!(true)
}

fn fails(response: &Value) -> bool {
    response["failAuthentication"] == json!(true) && !issues_tokens(response)
}

// ---- Define ----

#[tokio::test]
async fn define_starts_with_a_custom_challenge() {
    let d = dir();
    let response = respond(&ports(&d), fixture(DEFINE_START)).await;
    assert_eq!(
        response,
        json!({ "challengeName": "CUSTOM_CHALLENGE", "issueTokens": false, "failAuthentication": false })
    );
    let next = respond(&ports(&d), fixture(DEFINE_AFTER_DEMOGRAPHICS)).await;
    assert_eq!(next["challengeName"], "CUSTOM_CHALLENGE");
}

#[tokio::test]
async fn define_issues_tokens_only_for_the_exact_success_sequence() {
    let d = dir();
    let ports = ports(&d);
    assert!(issues_tokens(
        &respond(&ports, fixture(DEFINE_COMPLETE)).await
    ));
    // One or two wrong codes before the right one are still the sequence.
    let retried = json!([
        entry("DEMOGRAPHICS", true),
        entry("EMAIL_OTP", false),
        entry("EMAIL_OTP", false),
        entry("EMAIL_OTP", true),
        entry("CONSENT", true)
    ]);
    assert!(issues_tokens(&respond(&ports, define_with(retried)).await));
}

/// member-auth.md §8.C65: everything but the exact sequence fails, never issues tokens.
#[tokio::test]
async fn define_fails_every_session_it_does_not_fully_recognise() {
    let d = dir();
    let ports = ports(&d);
    let ok = |m| entry(m, true);
    let srp =
        json!({ "challengeName": "SRP_A", "challengeResult": true, "challengeMetadata": null });
    let password = json!({ "challengeName": "PASSWORD_VERIFIER", "challengeResult": true, "challengeMetadata": null });
    let cases = [
        ("wrong questions", json!([entry("DEMOGRAPHICS", false)])),
        (
            "wrong consent",
            json!([ok("DEMOGRAPHICS"), ok("EMAIL_OTP"), entry("CONSENT", false)]),
        ),
        (
            "three wrong codes",
            json!([
                ok("DEMOGRAPHICS"),
                entry("EMAIL_OTP", false),
                entry("EMAIL_OTP", false),
                entry("EMAIL_OTP", false)
            ]),
        ),
        (
            "unknown metadata",
            json!([ok("DEMOGRAPHICS"), ok("SMS_OTP"), ok("CONSENT")]),
        ),
        (
            "no metadata",
            json!([{ "challengeName": "CUSTOM_CHALLENGE", "challengeResult": true }]),
        ),
        (
            "order swapped",
            json!([ok("EMAIL_OTP"), ok("DEMOGRAPHICS"), ok("CONSENT")]),
        ),
        ("consent first", json!([ok("CONSENT")])),
        ("skips the code", json!([ok("DEMOGRAPHICS"), ok("CONSENT")])),
        (
            "duplicated step",
            json!([
                ok("DEMOGRAPHICS"),
                ok("DEMOGRAPHICS"),
                ok("EMAIL_OTP"),
                ok("CONSENT")
            ]),
        ),
        (
            "extra entry",
            json!([
                ok("DEMOGRAPHICS"),
                ok("EMAIL_OTP"),
                ok("CONSENT"),
                ok("CONSENT")
            ]),
        ),
        (
            "SRP_A",
            json!([srp, ok("DEMOGRAPHICS"), ok("EMAIL_OTP"), ok("CONSENT")]),
        ),
        (
            "PASSWORD_VERIFIER",
            json!([password, ok("DEMOGRAPHICS"), ok("EMAIL_OTP"), ok("CONSENT")]),
        ),
        (
            "null entry",
            json!([null, ok("DEMOGRAPHICS"), ok("EMAIL_OTP"), ok("CONSENT")]),
        ),
        (
            "not CUSTOM_CHALLENGE",
            json!([{ "challengeName": "EMAIL_OTP", "challengeResult": true, "challengeMetadata": "DEMOGRAPHICS" }]),
        ),
    ];
    for (name, session) in cases {
        assert!(
            fails(&respond(&ports, define_with(session)).await),
            "{name} must fail"
        );
    }
    let mut not_found = fixture(DEFINE_COMPLETE);
    not_found["request"]["userNotFound"] = json!(true);
    assert!(
        fails(&respond(&ports, not_found).await),
        "userNotFound must fail"
    );
}

/// §8.C66: with a valid SECRET_HASH but no valid proof, Define fails.
#[tokio::test]
async fn define_with_a_forged_or_missing_proof_fails() {
    let d = dir();
    let ports = ports(&d);
    for metadata in [
        json!({}),
        json!({ "txn": TXN, "as_proof": "forged" }),
        json!({ "txn": "txn-other", "as_proof": secret().proof(CLIENT, TXN) }),
    ] {
        let mut event = fixture(DEFINE_COMPLETE);
        event["request"]["clientMetadata"] = metadata;
        assert!(fails(&respond(&ports, event).await));
    }
    // A proof made for another app client does not carry over.
    let mut event = fixture(DEFINE_COMPLETE);
    event["request"]["clientMetadata"] =
        json!({ "txn": TXN, "as_proof": secret().proof("other-client", TXN) });
    assert!(fails(&respond(&ports, event).await));
}

// ---- Create ----

#[tokio::test]
async fn create_asks_the_questions_with_nothing_secret_in_public() {
    let d = dir();
    let response = respond(&ports(&d), fixture(CREATE_DEMOGRAPHICS)).await;
    assert_eq!(response["challengeMetadata"], "DEMOGRAPHICS");
    assert_eq!(
        response["publicChallengeParameters"],
        json!({ "challenge": "DEMOGRAPHICS", "questions": "birth_date member_id postal_code" })
    );
    let text = response.to_string();
    for secret_fact in ["1984", "DH0001", "43215", "maria"] {
        assert!(!text.contains(secret_fact), "{secret_fact} leaked");
    }
}

/// §8.C58: an unknown email gets exactly the same questions.
#[tokio::test]
async fn create_for_an_unknown_email_is_identical() {
    let d = dir();
    let ports = ports(&d);
    let member = respond(&ports, fixture(CREATE_DEMOGRAPHICS)).await;
    let mut unknown = fixture(CREATE_DEMOGRAPHICS);
    unknown["userName"] = json!("nobody@example.com");
    unknown["request"]["userAttributes"] = json!({});
    unknown["request"]["userNotFound"] = json!(true);
    assert_eq!(respond(&ports, unknown).await, member);
}

#[tokio::test]
async fn create_sends_a_code_and_shows_only_the_masked_email() {
    let d = dir();
    let ports = ports(&d);
    let response = respond(&ports, fixture(CREATE_EMAIL_OTP)).await;
    assert_eq!(response["challengeMetadata"], "EMAIL_OTP");
    assert_eq!(
        response["publicChallengeParameters"],
        json!({ "challenge": "EMAIL_OTP", "masked_email": "m***@example.com" })
    );
    let code = ports.sender.last_code().unwrap_or_default();
    assert_eq!(code.len(), 6);
    assert!(
        !response.to_string().contains(&code),
        "the code must not be in the challenge"
    );
    // Only a keyed hash is stored.
    let stored = read_kv(&ports, CODE_NAMESPACE).await;
    assert!(!stored.contains(&code));
}

async fn read_kv(ports: &Ports, namespace: &str) -> String {
    use fhir_store::KeyValueStore;
    let rows = ports.kv.list(namespace, "", 100).await.unwrap_or_default();
    format!("{rows:?}")
}

#[tokio::test]
async fn create_describes_the_app_for_consent() {
    let d = dir();
    let response = respond(&ports(&d), fixture(CREATE_CONSENT)).await;
    assert_eq!(response["challengeMetadata"], "CONSENT");
    assert_eq!(
        response["publicChallengeParameters"]["app_name"],
        "Demo Health App"
    );
    assert_eq!(
        response["publicChallengeParameters"]["app_attested"],
        "true"
    );
}

/// §8.C64: a challenge out of sequence is never created.
#[tokio::test]
async fn create_out_of_sequence_or_without_proof_is_refused() {
    let d = dir();
    let ports = ports(&d);
    let mut swapped = fixture(CREATE_CONSENT);
    swapped["request"]["session"] = json!([entry("EMAIL_OTP", true)]);
    assert!(matches!(
        run(&ports, swapped).await,
        Err(TriggerError::Refused)
    ));
    let mut unproven = fixture(CREATE_EMAIL_OTP);
    unproven["request"]["clientMetadata"] = json!({});
    assert!(matches!(
        run(&ports, unproven).await,
        Err(TriggerError::Refused)
    ));
    assert_eq!(ports.sender.count(), 0, "no code is sent out of sequence");
}

// ---- Verify ----

#[tokio::test]
async fn verify_accepts_normalized_demographics() {
    let d = dir();
    let response = respond(&ports(&d), fixture(VERIFY_DEMOGRAPHICS)).await;
    assert_eq!(response, json!({ "answerCorrect": true }));
}

fn demographics_answer(birth_date: &str, member_id: &str, postal_code: &str) -> Value {
    let mut event = fixture(VERIFY_DEMOGRAPHICS);
    event["request"]["challengeAnswer"] = json!(
        json!({ "birth_date": birth_date, "member_id": member_id, "postal_code": postal_code })
            .to_string()
    );
    event
}

/// §8.C59: a wrong DOB only, or a wrong ZIP only, gives the very same answer.
#[tokio::test]
async fn verify_never_reveals_which_answer_was_wrong() {
    let d = dir();
    let ports = ports(&d);
    let wrong_dob = respond(
        &ports,
        demographics_answer("1984-03-08", "DH000112345", "43215"),
    )
    .await;
    let wrong_id = respond(
        &ports,
        demographics_answer("1984-03-07", "DH000112346", "43215"),
    )
    .await;
    let wrong_zip = respond(
        &ports,
        demographics_answer("1984-03-07", "DH000112345", "43216"),
    )
    .await;
    assert_eq!(wrong_dob, json!({ "answerCorrect": false }));
    assert_eq!(wrong_dob, wrong_id);
    assert_eq!(wrong_dob, wrong_zip);
}

/// Issue #14 finding 3: failures count per member across sessions; after
/// `max_failures` the questions are no longer graded for the sender (right and wrong
/// pass alike, on to the code), and the verdict waits for the code step.
#[tokio::test]
async fn past_the_failure_limit_the_questions_go_ungraded_until_the_code() {
    let d = dir();
    let ports = ports(&d);
    let limit = ports.config.max_failures;
    assert_eq!(
        limit, 100,
        "NIST SP 800-63B §5.2.2: at most 100 per account"
    );
    for guess in 0..limit {
        let response = respond(
            &ports,
            demographics_answer(
                &format!("19{:02}-03-10", guess % 100),
                "DH000112345",
                "43215",
            ),
        )
        .await;
        assert_eq!(response["answerCorrect"], false);
    }
    assert!(read_kv(&ports, FAILURE_NAMESPACE).await.contains("100"));
    let wrong = respond(
        &ports,
        demographics_answer("1999-01-01", "DH000112345", "43215"),
    )
    .await;
    let right = respond(&ports, fixture(VERIFY_DEMOGRAPHICS)).await;
    assert_eq!(wrong, json!({ "answerCorrect": true }), "locked: ungraded");
    assert_eq!(
        wrong, right,
        "right and wrong answers are indistinguishable"
    );
}

/// §8.C58: an unknown email always fails at Verify, even with "right" answers.
#[tokio::test]
async fn verify_for_an_unknown_email_always_fails() {
    let d = dir();
    let mut unknown = fixture(VERIFY_DEMOGRAPHICS);
    unknown["userName"] = json!("nobody@example.com");
    unknown["request"]["userAttributes"] = json!({ "custom:patient_id": PATIENT });
    unknown["request"]["userNotFound"] = json!(true);
    assert_eq!(
        respond(&ports(&d), unknown).await,
        json!({ "answerCorrect": false })
    );
}

/// §8.C66 and C67: clientMetadata without a valid proof is ignored, the answer fails.
#[tokio::test]
async fn verify_without_a_valid_proof_fails() {
    let d = dir();
    let mut event = fixture(VERIFY_DEMOGRAPHICS);
    event["request"]["clientMetadata"]["as_proof"] = json!("forged");
    assert_eq!(
        respond(&ports(&d), event).await,
        json!({ "answerCorrect": false })
    );
}

async fn create_code(ports: &Ports) -> (String, String) {
    let created = respond(ports, fixture(CREATE_EMAIL_OTP)).await;
    let code_id = created["privateChallengeParameters"]["code_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (code_id, ports.sender.last_code().unwrap_or_default())
}

fn code_answer(code_id: &str, code: &str) -> Value {
    let mut event = fixture(VERIFY_EMAIL_OTP);
    event["request"]["privateChallengeParameters"]["code_id"] = json!(code_id);
    event["request"]["challengeAnswer"] = json!(code);
    event
}

/// §8.C61: a code works once.
#[tokio::test]
async fn a_code_is_single_use() {
    let d = dir();
    let ports = ports(&d);
    let (code_id, code) = create_code(&ports).await;
    assert_eq!(
        respond(&ports, code_answer(&code_id, &code)).await["answerCorrect"],
        true
    );
    assert_eq!(
        respond(&ports, code_answer(&code_id, &code)).await["answerCorrect"],
        false
    );
}

/// §8.C61: three wrong tries end the code, the right one no longer works.
#[tokio::test]
async fn brute_force_on_the_code_ends_it_after_three_tries() {
    let d = dir();
    let ports = ports(&d);
    let (code_id, code) = create_code(&ports).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        assert_eq!(
            respond(&ports, code_answer(&code_id, wrong)).await["answerCorrect"],
            false
        );
    }
    assert_eq!(
        respond(&ports, code_answer(&code_id, &code)).await["answerCorrect"],
        false
    );
}

/// §8.C61: the code of one challenge (session X) does not answer another (session Y).
#[tokio::test]
async fn a_code_from_another_challenge_is_rejected() {
    let d = dir();
    let ports = ports(&d);
    let (first_id, first_code) = create_code(&ports).await;
    let (second_id, _) = create_code(&ports).await;
    assert_eq!(
        respond(&ports, code_answer(&second_id, &first_code)).await["answerCorrect"],
        false
    );
    assert_eq!(
        respond(&ports, code_answer(&first_id, &first_code)).await["answerCorrect"],
        false
    );
}

/// §8.C62: codes sent per member are bounded, so SES calls are too. The member past the
/// bound is told when the window ends (#9 B3) instead of getting a code.
#[tokio::test]
async fn codes_sent_per_member_are_capped() {
    let d = dir();
    let ports = ports(&d);
    for _ in 0..3 {
        respond(&ports, fixture(CREATE_EMAIL_OTP)).await;
    }
    let fourth = respond(&ports, fixture(CREATE_EMAIL_OTP)).await;
    let until = &fourth["publicChallengeParameters"][member_signin::triggers::CODES_WITHHELD_UNTIL];
    assert!(
        until.as_str().is_some_and(|t| t.parse::<i64>().is_ok()),
        "{fourth}"
    );
    assert_eq!(ports.sender.count(), 3);
}

#[tokio::test]
async fn consent_activates_only_the_grant_of_this_app_patient_and_transaction() {
    let d = dir();
    let ports = ports(&d);
    assert_eq!(
        respond(&ports, fixture(VERIFY_CONSENT)).await["answerCorrect"],
        false,
        "no pending grant"
    );
    ports
        .grants
        .record_pending("grant-0001", CLIENT, "patient-m002", TXN);
    assert_eq!(
        respond(&ports, fixture(VERIFY_CONSENT)).await["answerCorrect"],
        false,
        "another patient's grant"
    );
    ports
        .grants
        .record_pending("grant-0001", CLIENT, PATIENT, "txn-other");
    assert_eq!(
        respond(&ports, fixture(VERIFY_CONSENT)).await["answerCorrect"],
        false,
        "another transaction's grant"
    );
    ports
        .grants
        .record_pending("grant-0001", CLIENT, PATIENT, TXN);
    assert_eq!(
        respond(&ports, fixture(VERIFY_CONSENT)).await["answerCorrect"],
        true
    );
}

// ---- Pre Token Generation V2 ----

/// §8.C68: no active grant for (member, app), no tokens.
#[tokio::test]
async fn pre_token_generation_refuses_without_an_active_grant() {
    let d = dir();
    let ports = ports(&d);
    assert!(matches!(
        run(&ports, fixture(PRETOKEN_AUTHENTICATION)).await,
        Err(TriggerError::Refused)
    ));
    ports
        .grants
        .activate_now("another-client", PATIENT, "grant-x");
    assert!(matches!(
        run(&ports, fixture(PRETOKEN_REFRESH)).await,
        Err(TriggerError::Refused)
    ));
}

/// §8.C67, C69, C70: patient from the attribute (never clientMetadata), admin scope and
/// PII suppressed, groups copied.
#[tokio::test]
async fn pre_token_generation_adds_patient_and_strips_admin_scope_and_pii() {
    let d = dir();
    let ports = ports(&d);
    ports.grants.activate_now(CLIENT, PATIENT, "grant-0001");
    for fixture_text in [PRETOKEN_AUTHENTICATION, PRETOKEN_REFRESH] {
        let details =
            respond(&ports, fixture(fixture_text)).await["claimsAndScopeOverrideDetails"].take();
        let access = &details["accessTokenGeneration"];
        assert_eq!(
            access["claimsToAddOrOverride"]["patient"], PATIENT,
            "not the forged Patient/q1"
        );
        assert_eq!(access["claimsToAddOrOverride"]["grant_id"], "grant-0001");
        assert_eq!(
            access["claimsToAddOrOverride"]["smart_scope"],
            "patient/*.rs"
        );
        assert_eq!(access["scopesToSuppress"], json!([ADMIN_SCOPE]));
        let suppressed = details["idTokenGeneration"]["claimsToSuppress"].to_string();
        for claim in [
            "email",
            "phone_number",
            "birthdate",
            "custom:patient_id",
            "email_verified",
        ] {
            assert!(
                suppressed.contains(&format!("\"{claim}\"")),
                "{claim} not suppressed"
            );
        }
        assert_eq!(
            details["groupOverrideDetails"],
            json!({ "groupsToOverride": ["members"], "iamRolesToOverride": [], "preferredRole": null })
        );
    }
}

/// A revoked grant stops refreshes at once.
#[tokio::test]
async fn refresh_after_revocation_is_refused() {
    let d = dir();
    let ports = ports(&d);
    ports.grants.activate_now(CLIENT, PATIENT, "grant-0001");
    assert!(run(&ports, fixture(PRETOKEN_REFRESH)).await.is_ok());
    ports.grants.revoke(CLIENT, PATIENT);
    assert!(matches!(
        run(&ports, fixture(PRETOKEN_REFRESH)).await,
        Err(TriggerError::Refused)
    ));
}

/// Our responses must read as Cognito's own model (a crate we did not write).
#[tokio::test]
async fn responses_fit_the_aws_lambda_events_model() {
    use aws_lambda_events::event::cognito::{
        CognitoEventUserPoolsCreateAuthChallenge, CognitoEventUserPoolsDefineAuthChallenge,
        CognitoEventUserPoolsPreTokenGenV2, CognitoEventUserPoolsVerifyAuthChallenge,
    };
    let d = dir();
    let ports = ports(&d);
    ports.grants.activate_now(CLIENT, PATIENT, "grant-0001");
    let define = handle_trigger(fixture(DEFINE_COMPLETE), &ports)
        .await
        .unwrap_or_default();
    let define: CognitoEventUserPoolsDefineAuthChallenge =
        serde_json::from_value(define).unwrap_or_else(|e| panic!("define: {e}"));
    assert!(define.response.issue_tokens);
    let create = handle_trigger(fixture(CREATE_EMAIL_OTP), &ports)
        .await
        .unwrap_or_default();
    let create: CognitoEventUserPoolsCreateAuthChallenge =
        serde_json::from_value(create).unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(
        create.response.challenge_metadata.as_deref(),
        Some("EMAIL_OTP")
    );
    let verify = handle_trigger(fixture(VERIFY_DEMOGRAPHICS), &ports)
        .await
        .unwrap_or_default();
    let verify: CognitoEventUserPoolsVerifyAuthChallenge =
        serde_json::from_value(verify).unwrap_or_else(|e| panic!("verify: {e}"));
    assert!(verify.response.answer_correct);
    let token = handle_trigger(fixture(PRETOKEN_AUTHENTICATION), &ports)
        .await
        .unwrap_or_default();
    let token: CognitoEventUserPoolsPreTokenGenV2 =
        serde_json::from_value(token).unwrap_or_else(|e| panic!("pre token: {e}"));
    let details = token
        .response
        .claims_and_scope_override_details
        .unwrap_or_else(|| panic!("no details"));
    assert_eq!(
        details.group_override_details.groups_to_override,
        vec!["members".to_owned()]
    );
}

// ---- Dispatch ----

/// §8.C71: unknown sources and garbage never panic and are refused.
#[tokio::test]
async fn unknown_trigger_sources_and_garbage_are_refused() {
    let d = dir();
    let ports = ports(&d);
    assert!(matches!(
        run(&ports, fixture(PRETOKEN_CLIENT_CREDENTIALS)).await,
        Err(TriggerError::Unsupported)
    ));
    for source in [
        "TokenGeneration_HostedAuth",
        "PreSignUp_SignUp",
        "CustomMessage_AdminCreateUser",
        "",
    ] {
        let mut event = fixture(PRETOKEN_AUTHENTICATION);
        event["triggerSource"] = json!(source);
        assert!(
            matches!(run(&ports, event).await, Err(TriggerError::Unsupported)),
            "{source}"
        );
    }
    for garbage in [
        json!(null),
        json!([]),
        json!({}),
        json!({ "triggerSource": 7 }),
    ] {
        assert!(matches!(
            run(&ports, garbage).await,
            Err(TriggerError::Malformed)
        ));
    }
    let mut odd = fixture(DEFINE_COMPLETE);
    odd["request"]["session"] = json!("not a list");
    assert!(matches!(
        run(&ports, odd).await,
        Err(TriggerError::Malformed)
    ));
    let mut extra = fixture(DEFINE_COMPLETE);
    extra["request"]["somethingNew"] = json!({ "nested": [1, 2] });
    assert!(
        issues_tokens(&respond(&ports, extra).await),
        "unknown fields are ignored"
    );
}

/// Every comparison of an answer with a fact on file is constant time: the code paths
/// use `secrets::constant_time_eq` (digest, then `aws_lc_rs::constant_time`), never `==`.
#[test]
fn constant_time_compare_is_used() {
    let verify = include_str!("../../src/triggers/verify.rs");
    let guard = include_str!("../../src/triggers/guard.rs");
    assert!(
        verify.contains("constant_time_eq(&a, &f)")
            && verify.contains("constant_time_eq(&answer, &f)")
    );
    let secret = include_str!("../../src/secret.rs");
    assert!(
        guard.contains("constant_time_eq(&record.code_id, code_id)")
            && guard.contains(".code_matches(member, code_id, &typed, &record.hash)")
            && secret.contains("secrets::constant_time_eq(stored, &code_hash_with(")
    );
    assert!(
        verify.contains("use secrets::constant_time_eq;")
            && guard.contains("use secrets::constant_time_eq;")
    );
    assert!(secrets::constant_time_eq("1984-03-07", "1984-03-07"));
    assert!(!secrets::constant_time_eq("1984-03-07", "1984-03-08"));
}

/// The Pre Authentication event Cognito sends at `AdminInitiateAuth`, for the fixture
/// member.
fn pre_authentication(user_not_found: bool) -> Value {
    let start = fixture(DEFINE_START);
    json!({
        "version": "1",
        "triggerSource": "PreAuthentication_Authentication",
        "userName": start["userName"],
        "callerContext": start["callerContext"],
        "request": {
            "userAttributes": start["request"]["userAttributes"],
            "validationData": {},
            "userNotFound": user_not_found,
        },
        "response": {},
    })
}

/// Issue #14 finding 4: an operator hold refuses the member before any challenge,
/// until it is released; unknown users pass (they fail later, like everyone).
#[tokio::test]
async fn pre_authentication_refuses_a_member_on_hold_until_released() {
    let d = dir();
    let ports = ports(&d);
    assert_eq!(respond(&ports, pre_authentication(false)).await, json!({}));
    member_signin::access::hold(ports.kv.as_ref(), PATIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        run(&ports, pre_authentication(false)).await,
        Err(TriggerError::Refused)
    ));
    assert_eq!(respond(&ports, pre_authentication(true)).await, json!({}));
    let released = member_signin::access::release(ports.kv.as_ref(), PATIENT).await;
    assert!(matches!(released, Ok(true)));
    assert_eq!(respond(&ports, pre_authentication(false)).await, json!({}));
}

/// A member directory whose member's coverage ended on a given day.
struct CoverageEnded(&'static str);

impl member_signin::MemberDirectory for CoverageEnded {
    async fn facts(
        &self,
        _patient_id: &str,
    ) -> Result<Option<member_signin::MemberFacts>, member_signin::PortError> {
        Ok(Some(fixture_facts()))
    }

    async fn coverage_end(
        &self,
        _patient_id: &str,
    ) -> Result<Option<String>, member_signin::PortError> {
        Ok(Some(self.0.to_owned()))
    }
}

/// Issue #14 finding 4: a former member whose coverage ended longer ago than the plan's
/// access window is refused; within the window, or with no window, they sign in.
#[tokio::test]
async fn pre_authentication_refuses_a_former_member_past_the_access_window() {
    let d = dir();
    let base = ports(&d);
    let with = |ended: &'static str, window: Option<u32>| {
        let mut config = base.config.clone();
        config.access_window_days = window;
        member_signin::TriggerPorts {
            members: std::sync::Arc::new(CoverageEnded(ended)),
            kv: std::sync::Arc::clone(&base.kv),
            sender: std::sync::Arc::clone(&base.sender),
            grants: std::sync::Arc::clone(&base.grants),
            config,
        }
    };
    let refused = |ports| async move {
        let outcome = handle_trigger(pre_authentication(false), &ports).await;
        matches!(outcome, Err(TriggerError::Refused))
    };
    assert!(refused(with("2001-01-31", Some(365))).await);
    assert!(
        !refused(with("2999-12-31", Some(365))).await,
        "coverage not ended yet"
    );
    assert!(
        !refused(with("2001-01-31", None)).await,
        "the plan keeps access"
    );
}
