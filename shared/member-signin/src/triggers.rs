//! The Cognito custom-authentication triggers, as functions over the event JSON.
//!
//! One Lambda function serves every trigger through [`handle_trigger`]. The event is
//! read as `serde_json::Value` first and dispatched on `triggerSource`, because the
//! typed event enums of `aws_lambda_events` are closed: a source they do not list would
//! fail deserialization and, with it, every sign-in.
//!
//! | trigger | does | never |
//! |---|---|---|
//! | Define | walks the session: DEMOGRAPHICS → EMAIL_OTP → CONSENT; tokens only for that exact success | issues tokens on a session it does not fully recognise |
//! | Create | the questions (same for unknown users), a CSPRNG code (hash stored, sent), the app for consent | puts answers or facts in public parameters |
//! | Verify | proof, lock state (questions ungraded while locked), constant-time compare, grant activation | says which answer was wrong |
//! | Pre Authentication | refuses members the plan disabled (coverage ended beyond the access window, operator hold) | refuses unknown users (they fail later, like everyone) |
//! | PreTokenGen V2 | refuses without an active grant; adds `patient`, `fhirUser`, `grant_id`; strips the admin scope and PII | reads `clientMetadata` |

mod create;
mod define;
mod event;
mod guard;
mod preauth;
mod sequence;
mod token;
mod verify;

use fhir_store::KeyValueStore;
use serde_json::Value;

pub use create::{CODES_WITHHELD_UNTIL, DEMOGRAPHIC_QUESTIONS, PUBLIC_CHALLENGE};
pub use define::Decision;
pub use event::PATIENT_ATTRIBUTE;
pub use guard::{CODE_NAMESPACE, DEFERRED_NAMESPACE, FAILURE_NAMESPACE, SENT_NAMESPACE};
pub use sequence::{CUSTOM_CHALLENGE, Phase};
pub use token::ADMIN_SCOPE;

use crate::ports::{CodeSender, GrantGate, MemberDirectory, PortError, TriggerPorts};

/// Why a trigger refused. Cognito reports the text to the caller as "{trigger} failed
/// with error {text}" and fails the sign-in, so the texts are deliberately generic.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// A `triggerSource` this function does not serve (e.g. client-credentials tokens).
    #[error("unsupported trigger")]
    Unsupported,
    /// Not a Cognito trigger event we can read.
    #[error("malformed trigger event")]
    Malformed,
    /// The sign-in may not go on (no grant, out-of-sequence challenge, too many codes).
    #[error("sign-in refused")]
    Refused,
    /// A dependency failed; fail closed. The source is for logs, not for Cognito.
    #[error("sign-in unavailable")]
    Port(#[source] PortError),
}

/// Which trigger an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    PreAuthentication,
    Define,
    Create,
    Verify,
    PreTokenGeneration,
}

impl Trigger {
    /// By `triggerSource`. Token generation is served only for sign-in and refresh;
    /// hosted UI, device, new-password and client-credentials sources are refused.
    pub fn from_source(source: &str) -> Option<Trigger> {
        match source {
            "PreAuthentication_Authentication" => Some(Trigger::PreAuthentication),
            s if s.starts_with("DefineAuthChallenge_") => Some(Trigger::Define),
            s if s.starts_with("CreateAuthChallenge_") => Some(Trigger::Create),
            s if s.starts_with("VerifyAuthChallengeResponse_") => Some(Trigger::Verify),
            "TokenGeneration_Authentication" | "TokenGeneration_RefreshTokens" => {
                Some(Trigger::PreTokenGeneration)
            }
            _ => None,
        }
    }
}

/// Runs the trigger the event names and returns the event with its `response` filled,
/// as Cognito expects it back.
pub async fn handle_trigger<D, K, S, G>(
    mut event: Value,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<Value, TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
    S: CodeSender,
    G: GrantGate,
{
    let source = event
        .get("triggerSource")
        .and_then(Value::as_str)
        .ok_or(TriggerError::Malformed)?;
    let trigger = Trigger::from_source(source).ok_or(TriggerError::Unsupported)?;
    let parsed: event::Event =
        serde_json::from_value(event.clone()).map_err(|_| TriggerError::Malformed)?;
    let response = match trigger {
        Trigger::PreAuthentication => preauth::pre_authentication(&parsed, ports).await?,
        Trigger::Define => define::define(&parsed, &ports.config),
        Trigger::Create => create::create(&parsed, ports).await?,
        Trigger::Verify => verify::verify(&parsed, ports).await?,
        Trigger::PreTokenGeneration => token::pre_token(&parsed, ports).await?,
    };
    event
        .as_object_mut()
        .ok_or(TriggerError::Malformed)?
        .insert("response".into(), response);
    Ok(event)
}
