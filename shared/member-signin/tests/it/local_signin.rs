//! The local stand-in end to end: the same triggers, in Cognito's order, behind the
//! `SignIn` port, with the attack cases of member-auth.md §8.C that need a whole flow.

use std::time::Duration;

use crate::support::*;
use member_signin::{
    Answer, Challenge, LocalSignIn, SignIn, SignInContext, SignInError, SignInSession, Step,
};

type Local = LocalSignIn<Members, store_redb::RedbStore, RecordingSender, MemoryGrants>;

fn context() -> SignInContext {
    SignInContext {
        client_id: CLIENT.into(),
        transaction_id: TXN.into(),
    }
}

async fn local(dir: &tempfile::TempDir) -> Local {
    let local = LocalSignIn::new(ports(dir));
    local
        .provision(EMAIL, PATIENT)
        .await
        .unwrap_or_else(|e| panic!("provision: {e}"));
    local
}

fn right_demographics() -> Answer {
    Answer::Demographics {
        birth_date: "03/07/1984".into(),
        member_id: "dh0001-12345".into(),
        postal_code: "43215-2101".into(),
    }
}

fn wrong_demographics() -> Answer {
    Answer::Demographics {
        birth_date: "1984-03-07".into(),
        member_id: "DH000112345".into(),
        postal_code: "43216".into(),
    }
}

fn session_of(step: &Step) -> SignInSession {
    match step {
        Step::Challenge { session, .. } => session.clone(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn challenge_of(step: &Step) -> Challenge {
    match step {
        Step::Challenge { challenge, .. } => challenge.clone(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

async fn step(local: &Local, previous: &Step, answer: Answer) -> Step {
    local
        .answer(&session_of(previous), &answer, &context())
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"))
}

async fn start(local: &Local, email: &str) -> Step {
    local
        .start(email, &context())
        .await
        .unwrap_or_else(|e| panic!("start: {e}"))
}

fn code(local: &Local) -> String {
    local.ports().sender.last_code().unwrap_or_default()
}

#[tokio::test]
async fn the_full_sequence_signs_the_member_in() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let first = start(&local, " Maria.Garcia.M001@example.com ").await;
    assert_eq!(challenge_of(&first), Challenge::Demographics);
    let second = step(&local, &first, right_demographics()).await;
    assert_eq!(
        challenge_of(&second),
        Challenge::EmailCode {
            masked_email: "m***@example.com".into()
        }
    );
    // One wrong code is allowed; the same code stays valid and nothing new is sent.
    let retry = step(&local, &second, Answer::EmailCode("not-it".into())).await;
    assert!(matches!(challenge_of(&retry), Challenge::EmailCode { .. }));
    assert_eq!(local.ports().sender.count(), 1);
    let third = step(&local, &retry, Answer::EmailCode(code(&local))).await;
    assert_eq!(challenge_of(&third), Challenge::Consent);
    local
        .ports()
        .grants
        .record_pending("grant-0001", CLIENT, PATIENT, TXN);
    let done = step(
        &local,
        &third,
        Answer::Consent {
            grant_id: "grant-0001".into(),
        },
    )
    .await;
    match done {
        Step::SignedIn {
            patient,
            grant_id,
            subject,
        } => {
            assert_eq!(
                (patient.as_str(), grant_id.as_str()),
                (PATIENT, "grant-0001")
            );
            assert!(
                !subject.contains('@'),
                "the subject is opaque, not the email"
            );
        }
        other => panic!("expected SignedIn, got {other:?}"),
    }
}

/// #9 B3: three codes per member per 15 minutes stays the limit, but a member who signs
/// in a fourth time (a fourth app, or the connected-apps page again) is told the truth
/// and when to come back, not that their details could not be confirmed. Only after
/// the questions were answered right: wrong answers still fail the same generic way.
#[tokio::test]
async fn the_fourth_sign_in_in_a_window_is_told_too_many_codes_and_when_to_return() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let window = local.ports().config.code_window_secs;
    let limit = local.ports().config.max_codes_sent;
    assert_eq!(limit, 3);
    for _ in 0..limit {
        let first = start(&local, EMAIL).await;
        let second = step(&local, &first, right_demographics()).await;
        assert!(matches!(challenge_of(&second), Challenge::EmailCode { .. }));
    }
    assert_eq!(local.ports().sender.count(), 3);

    let before = fhir::clock::unix_now();
    let first = start(&local, EMAIL).await;
    let fourth = step(&local, &first, right_demographics()).await;
    match challenge_of(&fourth) {
        Challenge::TooManyCodes { retry_at } => assert!(
            retry_at > before && retry_at <= before + window,
            "retry_at {retry_at} is within the window from {before}"
        ),
        other => panic!("expected TooManyCodes, got {other:?}"),
    }
    assert_eq!(local.ports().sender.count(), 3, "no fourth code is sent");
    // Nothing typed gets past it: there is no code behind the challenge.
    let typed = step(&local, &fourth, Answer::EmailCode(code(&local))).await;
    assert!(
        !matches!(typed, Step::SignedIn { .. })
            && !matches!(&typed, Step::Challenge { challenge, .. } if *challenge == Challenge::Consent),
        "{typed:?}"
    );

    // Someone without the member's answers learns nothing new.
    let first = start(&local, EMAIL).await;
    assert_eq!(
        step(&local, &first, wrong_demographics()).await,
        Step::Failed
    );
}

/// §8.C58: an unknown email gets the same questions and the same failure.
#[tokio::test]
async fn enumeration_unknown_email_gets_the_same_challenge_and_failure() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let member = start(&local, EMAIL).await;
    let stranger = start(&local, "nobody@example.com").await;
    assert_eq!(challenge_of(&member), challenge_of(&stranger));
    assert_eq!(
        step(&local, &member, wrong_demographics()).await,
        Step::Failed
    );
    assert_eq!(
        step(&local, &stranger, right_demographics()).await,
        Step::Failed
    );
    assert_eq!(local.ports().sender.count(), 0);
}

/// Issue #14 finding 3: someone who knows the member's email and fails the questions
/// far more often than a member would (here `max_failures` times, from many sources)
/// locks the questions, not the member. Locked, every answer passes on to the email
/// code, so guessing learns nothing; the member, who reads the code in their own email,
/// still gets in; the guesser, even with a code, does not.
#[tokio::test]
async fn a_locked_member_still_gets_in_with_their_own_code_and_a_guesser_learns_nothing() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    for _ in 0..local.ports().config.max_failures {
        let first = start(&local, EMAIL).await;
        assert_eq!(
            step(&local, &first, wrong_demographics()).await,
            Step::Failed
        );
    }

    // Locked: wrong answers now look exactly like right ones.
    let first = start(&local, EMAIL).await;
    let guessed = step(&local, &first, wrong_demographics()).await;
    assert!(matches!(
        challenge_of(&guessed),
        Challenge::EmailCode { .. }
    ));
    // Even the right code does not help whoever answered wrong.
    let with_code = step(&local, &guessed, Answer::EmailCode(code(&local))).await;
    assert!(
        !matches!(&with_code, Step::Challenge { challenge, .. } if *challenge == Challenge::Consent),
        "{with_code:?}"
    );

    // The member answers right and types the code from their email: in.
    let first = start(&local, EMAIL).await;
    let answered = step(&local, &first, right_demographics()).await;
    assert!(matches!(
        challenge_of(&answered),
        Challenge::EmailCode { .. }
    ));
    let proven = step(&local, &answered, Answer::EmailCode(code(&local))).await;
    assert_eq!(challenge_of(&proven), Challenge::Consent);
}

/// §8.C61: three wrong codes end the sign-in.
#[tokio::test]
async fn brute_force_on_the_code_fails_the_sign_in() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let first = start(&local, EMAIL).await;
    let mut current = step(&local, &first, right_demographics()).await;
    let wrong = if code(&local) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..2 {
        current = step(&local, &current, Answer::EmailCode(wrong.into())).await;
        assert!(matches!(
            challenge_of(&current),
            Challenge::EmailCode { .. }
        ));
    }
    assert_eq!(
        step(&local, &current, Answer::EmailCode(wrong.into())).await,
        Step::Failed
    );
}

/// §8.C63: a session answers once.
#[tokio::test]
async fn a_replayed_session_is_refused() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let first = start(&local, EMAIL).await;
    step(&local, &first, right_demographics()).await;
    let replay = local
        .answer(&session_of(&first), &right_demographics(), &context())
        .await;
    assert!(matches!(replay, Err(SignInError::SessionExpired)));
    let forged = local
        .answer(
            &SignInSession("made-up".into()),
            &right_demographics(),
            &context(),
        )
        .await;
    assert!(matches!(forged, Err(SignInError::SessionExpired)));
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await.with_session_ttl(Duration::ZERO);
    let first = start(&local, EMAIL).await;
    let late = local
        .answer(&session_of(&first), &right_demographics(), &context())
        .await;
    assert!(matches!(late, Err(SignInError::SessionExpired)));
}

/// §8.C64: answering consent while the questions are due fails; so does a code.
#[tokio::test]
async fn an_answer_to_the_wrong_challenge_fails() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    local
        .ports()
        .grants
        .record_pending("grant-0001", CLIENT, PATIENT, TXN);
    let first = start(&local, EMAIL).await;
    assert_eq!(
        step(
            &local,
            &first,
            Answer::Consent {
                grant_id: "grant-0001".into()
            }
        )
        .await,
        Step::Failed
    );
    let first = start(&local, EMAIL).await;
    assert_eq!(
        step(&local, &first, Answer::EmailCode("123456".into())).await,
        Step::Failed
    );
}

/// A session started for one app cannot be finished by another.
#[tokio::test]
async fn a_session_from_another_app_fails() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let first = start(&local, EMAIL).await;
    let other = SignInContext {
        client_id: "other-app".into(),
        transaction_id: TXN.into(),
    };
    assert_eq!(
        local
            .answer(&session_of(&first), &right_demographics(), &other)
            .await
            .ok(),
        Some(Step::Failed)
    );
}

/// Tokens are never issued without the consent grant: a consent answer naming no
/// pending grant of this member and transaction fails.
#[tokio::test]
async fn no_tokens_without_an_activated_grant() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let first = start(&local, EMAIL).await;
    let second = step(&local, &first, right_demographics()).await;
    let third = step(&local, &second, Answer::EmailCode(code(&local))).await;
    local
        .ports()
        .grants
        .record_pending("grant-other-txn", CLIENT, PATIENT, "txn-other");
    assert_eq!(
        step(
            &local,
            &third,
            Answer::Consent {
                grant_id: "grant-other-txn".into()
            }
        )
        .await,
        Step::Failed
    );
}

#[tokio::test]
async fn provisioning_keeps_the_first_username() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let again = local.provision(EMAIL, PATIENT).await.unwrap_or_default();
    let other = local
        .provision("someone@example.com", "patient-m002")
        .await
        .unwrap_or_default();
    assert_eq!(
        again,
        local
            .provision(&EMAIL.to_uppercase(), PATIENT)
            .await
            .unwrap_or_default()
    );
    assert_ne!(again, other);
}

/// Issue #14 finding 4: the stand-in runs Pre Authentication like Cognito, so a member
/// the plan put on hold cannot even start; after release they can.
#[tokio::test]
async fn a_member_on_hold_cannot_start_a_sign_in_until_released() {
    let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let local = local(&d).await;
    let kv = local.ports().kv.as_ref();
    member_signin::access::hold(kv, PATIENT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(start(&local, EMAIL).await, Step::Failed);
    assert!(matches!(
        member_signin::access::release(kv, PATIENT).await,
        Ok(true)
    ));
    assert_eq!(
        challenge_of(&start(&local, EMAIL).await),
        Challenge::Demographics
    );
}
