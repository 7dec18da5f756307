//! Create Auth Challenge: builds the challenge Define asked for.
//!
//! Public parameters reach the member's browser through our pages, so they name the
//! questions, show a masked email or describe the app, and never carry an answer or a
//! fact on file. Private parameters reach only Verify.

use fhir_store::KeyValueStore;
use serde_json::{Value, json};

use super::TriggerError;
use super::event::Event;
use super::guard::{Issued, issue_code, random_token};
use super::sequence::{CUSTOM_CHALLENGE, Phase, Progress, progress};
use crate::normalize::mask_email;
use crate::ports::{CodeSender, GrantGate, MemberDirectory, TriggerPorts};
use crate::secret::member_key;

/// The public parameter naming the challenge; the port's `Challenge` is read from it.
pub const PUBLIC_CHALLENGE: &str = "challenge";
/// Set on the EMAIL_OTP challenge instead of sending a code when the member already had
/// the most codes a window allows: the Unix second the window ends. Only a member who
/// has just answered the questions right ever sees it.
pub const CODES_WITHHELD_UNTIL: &str = "codes_withheld_until";
/// The questions of the DEMOGRAPHICS challenge, as field names the pages know.
pub const DEMOGRAPHIC_QUESTIONS: &str = "birth_date member_id postal_code";

/// The `response` object for the challenge now due.
pub async fn create<D, K, S, G>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<Value, TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
    S: CodeSender,
    G: GrantGate,
{
    if event.request.challenge_name.as_deref() != Some(CUSTOM_CHALLENGE) {
        return Err(TriggerError::Refused);
    }
    let Progress::Ask { phase, retry } = progress(event.session(), ports.config.code_tries) else {
        return Err(TriggerError::Refused);
    };
    // Past the questions only a known member with a proven transaction gets anywhere;
    // Define already fails everything else, this is the second lock.
    if phase != Phase::Demographics
        && (event.request.user_not_found
            || event.proven_transaction(&ports.config.secret).is_none())
    {
        return Err(TriggerError::Refused);
    }
    let (public, private) = match phase {
        Phase::Demographics => demographics(),
        Phase::EmailCode => email_code(event, ports, retry).await?,
        Phase::Consent => consent(event, ports).await?,
    };
    Ok(json!({
        "publicChallengeParameters": public,
        "privateChallengeParameters": private,
        "challengeMetadata": phase.metadata(),
    }))
}

/// The same questions for everyone, member or not, with no look-up at all.
fn demographics() -> (Value, Value) {
    let name = Phase::Demographics.metadata();
    (
        json!({ PUBLIC_CHALLENGE: name, "questions": DEMOGRAPHIC_QUESTIONS }),
        json!({ PUBLIC_CHALLENGE: name }),
    )
}

async fn email_code<D, K, S, G>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
    retry: bool,
) -> Result<(Value, Value), TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
    S: CodeSender,
{
    let patient = event.patient_id().ok_or(TriggerError::Refused)?;
    let facts = ports
        .members
        .facts(patient)
        .await
        .map_err(TriggerError::Port)?;
    let email = facts.and_then(|f| f.email).ok_or(TriggerError::Refused)?;
    let member = member_key(&event.user_name);
    let issued = issue_code(
        ports.kv.as_ref(),
        ports.sender.as_ref(),
        &ports.config,
        &member,
        &email,
        retry,
    )
    .await?;
    let name = Phase::EmailCode.metadata();
    let mut public = json!({ PUBLIC_CHALLENGE: name, "masked_email": mask_email(&email) });
    let code_id = match issued {
        Issued::Code(code_id) => code_id,
        Issued::LimitReached { until } => {
            // An honest answer instead of a misleading failure; the challenge id has no
            // code behind it, so nothing typed can pass.
            public[CODES_WITHHELD_UNTIL] = json!(until.to_string());
            random_token()?
        }
    };
    Ok((
        public,
        json!({ PUBLIC_CHALLENGE: name, "code_id": code_id }),
    ))
}

async fn consent<D, K, S, G: GrantGate>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<(Value, Value), TriggerError> {
    let client = event.caller_context.client_id.as_str();
    let app = ports
        .grants
        .app_display(client)
        .await
        .map_err(TriggerError::Port)?
        .ok_or(TriggerError::Refused)?;
    let name = Phase::Consent.metadata();
    Ok((
        json!({
            PUBLIC_CHALLENGE: name,
            "app_name": app.name,
            "app_attested": app.attested.to_string(),
            "privacy_policy_url": app.privacy_policy_url.unwrap_or_default(),
        }),
        json!({ PUBLIC_CHALLENGE: name }),
    ))
}
