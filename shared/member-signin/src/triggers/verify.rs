//! Verify Auth Challenge Response: grades one answer.
//!
//! Every answer passes the same gates in the same order: the authorization server's
//! proof, the member's lock state, then the check for the challenge. The result is one
//! boolean, so nothing tells which answer was wrong, whether the member exists or
//! whether they are locked.
//!
//! **Locked** (far more failures than a member makes, from many sources: see
//! SECURITY.md) does not lock the member out. The questions stop being graded for the
//! sender: every answer passes on to the email code, and its verdict is only
//! remembered for this sign-in. The code is then checked as always, and the sign-in
//! goes on only if the code is right *and* the remembered answers were. Whoever
//! guesses learns nothing from the questions; the member, who reads the code in their
//! own email, still gets in.

use fhir_store::KeyValueStore;
use serde::Deserialize;
use serde_json::{Value, json};

use super::TriggerError;
use super::create::PUBLIC_CHALLENGE;
use super::event::Event;
use super::guard::{check_code, defer_verdict, deferred_verdict, is_locked, record_failure};
use super::sequence::Phase;
use crate::normalize;
use crate::ports::{GrantGate, MemberDirectory, MemberFacts, TriggerPorts};
use crate::secret::member_key;
use secrets::constant_time_eq;

/// Looked up for unknown users so that their answers cost the same store round trips
/// as a member's. Enrollment never gives a Patient this id.
const NO_PATIENT: &str = "signin-no-such-patient";

/// The `response` object.
pub async fn verify<D, K, S, G>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<Value, TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
    G: GrantGate,
{
    let correct = answer_correct(event, ports).await?;
    Ok(json!({ "answerCorrect": correct }))
}

async fn answer_correct<D, K, S, G>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<bool, TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
    G: GrantGate,
{
    let Some(transaction) = event.proven_transaction(&ports.config.secret) else {
        tracing::warn!("answer without a valid authorization-server proof");
        return Ok(false);
    };
    let Some(phase) = event
        .private_parameter(PUBLIC_CHALLENGE)
        .and_then(Phase::from_metadata)
    else {
        return Ok(false);
    };
    let kv = ports.kv.as_ref();
    let member = member_key(&event.user_name);
    let locked = is_locked(kv, &ports.config, &member).await?;
    let known = !event.request.user_not_found;
    // `right`: the truth, counted as a failure when false; `passes`: what the sender is
    // told (the same as `right` unless the member is locked).
    let (right, passes) = match phase {
        Phase::Demographics => {
            let right = demographics_match(event, ports.members.as_ref()).await?;
            if known {
                // Always written, so a verdict from earlier in this sign-in never lingers.
                defer_verdict(kv, &member, transaction, right).await?;
            }
            (right, right | (locked & known))
        }
        Phase::EmailCode => {
            let code = event.private_parameter("code_id").unwrap_or_default();
            let code_right =
                check_code(kv, &ports.config, &member, code, &event.answer_text()).await?;
            // Answers given while locked count only now, with the code.
            let right = code_right & deferred_verdict(kv, &member, transaction).await?;
            (right, right)
        }
        Phase::Consent => {
            let right = consent_granted(event, ports.grants.as_ref(), transaction).await?;
            (right, right)
        }
    };
    // Consent is the member's choice, not a guess: a refusal is not an attack.
    if !(right & known) && phase != Phase::Consent {
        record_failure(kv, &ports.config, &member).await?;
    }
    Ok(passes & known)
}

/// The demographic answer, as the pages send it (JSON with these three fields).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Demographics {
    birth_date: String,
    member_id: String,
    postal_code: String,
}

async fn demographics_match<D: MemberDirectory>(
    event: &Event,
    members: &D,
) -> Result<bool, TriggerError> {
    let answer: Demographics = serde_json::from_str(&event.answer_text()).unwrap_or_default();
    let patient = event
        .patient_id()
        .filter(|_| !event.request.user_not_found)
        .unwrap_or(NO_PATIENT);
    let facts = members
        .facts(patient)
        .await
        .map_err(TriggerError::Port)?
        .unwrap_or_default();
    Ok(matches_facts(&answer, &facts))
}

/// All three facts are compared, in constant time and without short-circuiting, and
/// combined with `&`: the time taken does not depend on which one is wrong.
fn matches_facts(answer: &Demographics, facts: &MemberFacts) -> bool {
    let birth = both(
        normalize::birth_date(&answer.birth_date),
        facts.birth_date.as_deref().and_then(normalize::birth_date),
    );
    let id = any_of(
        normalize::member_id(&answer.member_id),
        facts
            .member_ids
            .iter()
            .filter_map(|m| normalize::member_id(m)),
    );
    let zip = any_of(
        normalize::zip5(&answer.postal_code),
        facts.postal_codes.iter().filter_map(|z| normalize::zip5(z)),
    );
    birth & id & zip
}

fn both(answer: Option<String>, on_file: Option<String>) -> bool {
    match (answer, on_file) {
        (Some(a), Some(f)) => constant_time_eq(&a, &f),
        _ => false,
    }
}

fn any_of(answer: Option<String>, on_file: impl Iterator<Item = String>) -> bool {
    let Some(answer) = answer else {
        return false;
    };
    on_file.fold(false, |found, f| found | constant_time_eq(&answer, &f))
}

/// The consent answer names the pending grant the member approved; the gate activates
/// it only if it belongs to this app, this patient and this proven transaction.
async fn consent_granted<G: GrantGate>(
    event: &Event,
    grants: &G,
    transaction: &str,
) -> Result<bool, TriggerError> {
    #[derive(Deserialize)]
    struct Consent {
        grant_id: String,
    }
    let (Ok(consent), Some(patient)) = (
        serde_json::from_str::<Consent>(&event.answer_text()),
        event.patient_id(),
    ) else {
        return Ok(false);
    };
    if event.request.user_not_found || consent.grant_id.is_empty() {
        return Ok(false);
    }
    let client = event.caller_context.client_id.as_str();
    grants
        .activate(&consent.grant_id, client, patient, transaction)
        .await
        .map_err(TriggerError::Port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> MemberFacts {
        MemberFacts {
            birth_date: Some("1984-03-07".into()),
            member_ids: vec!["DH000112345".into(), "DH9999".into()],
            postal_codes: vec!["43215".into()],
            email: None,
        }
    }

    fn answer(birth_date: &str, member_id: &str, postal_code: &str) -> Demographics {
        Demographics {
            birth_date: birth_date.into(),
            member_id: member_id.into(),
            postal_code: postal_code.into(),
        }
    }

    #[test]
    fn normalized_answers_match() {
        assert!(matches_facts(
            &answer("03/07/1984", "dh 0001-12345", "43215-0001"),
            &facts()
        ));
        assert!(matches_facts(
            &answer("1984-03-07", "dh9999", "43215"),
            &facts()
        ));
    }

    #[test]
    fn any_one_wrong_fact_fails() {
        assert!(!matches_facts(
            &answer("1984-03-08", "DH000112345", "43215"),
            &facts()
        ));
        assert!(!matches_facts(
            &answer("1984-03-07", "DH000112346", "43215"),
            &facts()
        ));
        assert!(!matches_facts(
            &answer("1984-03-07", "DH000112345", "43216"),
            &facts()
        ));
        assert!(!matches_facts(
            &Demographics::default(),
            &MemberFacts::default()
        ));
    }
}
