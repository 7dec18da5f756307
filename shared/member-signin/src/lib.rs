//! The member sign-in port.
//!
//! A member proves who they are in three challenges, always in this order:
//! demographic questions checked against the plan's Patient and Coverage records, a
//! one-time code sent to the email on file, then consent to the app's request. Only
//! after all three does the identity provider report [`Step::SignedIn`]; only then does
//! our authorization server mint SMART tokens.
//!
//! On AWS the port is Amazon Cognito's custom authentication (`AdminInitiateAuth` /
//! `AdminRespondToAuthChallenge` with `CUSTOM_AUTH`, Define/Create/Verify/PreTokenGen
//! triggers). Locally it is an in-process stand-in that runs the very same trigger code.

pub mod access;
pub mod app_links;
pub mod facts;
pub mod grants;
pub mod local;
pub mod normalize;
pub mod ports;
pub mod secret;
pub mod throttle;
pub mod triggers;

use std::collections::HashMap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use app_links::{
    COGNITO_CLIENT_NAMESPACE, CognitoClientLink, cognito_client_link, link_cognito_client,
    registered_cognito_client,
};
pub use facts::StoreMemberFacts;
pub use grants::{ConsentGrants, KvAppCatalog};
pub use local::{ConsoleCodeSender, LocalPorts, LocalSignIn, local_ports};
pub use ports::{
    ActiveGrant, AppCatalog, AppDisplay, CodeSender, GrantGate, MemberDirectory, MemberFacts,
    PortError, TriggerConfig, TriggerPorts,
};
pub use secret::SignInSecret;
pub use triggers::{TriggerError, handle_trigger};

/// Which app and which authorization transaction a sign-in belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInContext {
    /// Our SMART client id of the app the member is connecting.
    pub client_id: String,
    /// The authorization server's transaction id (the `/authorize` request in progress).
    pub transaction_id: String,
}

/// The identity provider's opaque session between two challenges (Cognito's `Session`).
/// It stays on the server, never in the browser, and is single use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInSession(pub String);

/// What the member is asked next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Challenge {
    /// Date of birth, member id and ZIP code.
    Demographics,
    /// A one-time code was sent to the email on file (shown masked, e.g. `j***@example.org`).
    EmailCode { masked_email: String },
    /// Identity is proven: show the consent page, then answer with the grant the member approved.
    Consent,
    /// The member answered the questions right but already had the most one-time codes
    /// a window allows, so none was sent. Tell them so, and to come back at `retry_at`
    /// (Unix seconds); this sign-in cannot go on.
    TooManyCodes { retry_at: i64 },
}

/// The member's answer to the current challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Demographics {
        birth_date: String,
        member_id: String,
        postal_code: String,
    },
    EmailCode(String),
    /// The pending grant the authorization server recorded for the approved scopes.
    Consent {
        grant_id: String,
    },
}

impl Challenge {
    /// The challenge a Create trigger described in its public parameters (the same map
    /// Cognito returns as `ChallengeParameters`). `None` for anything else.
    pub fn from_public_parameters(parameters: &HashMap<String, String>) -> Option<Challenge> {
        let text = |key: &str| parameters.get(key).map(String::as_str);
        match text(triggers::PUBLIC_CHALLENGE).and_then(triggers::Phase::from_metadata)? {
            triggers::Phase::Demographics => Some(Challenge::Demographics),
            triggers::Phase::EmailCode => match text(triggers::CODES_WITHHELD_UNTIL) {
                Some(until) => Some(Challenge::TooManyCodes {
                    retry_at: until.parse().ok()?,
                }),
                None => Some(Challenge::EmailCode {
                    masked_email: text("masked_email")?.to_owned(),
                }),
            },
            triggers::Phase::Consent => Some(Challenge::Consent),
        }
    }
}

impl Answer {
    /// The `ANSWER` sent to Cognito, in the form the Verify trigger reads.
    pub fn to_challenge_answer(&self) -> String {
        let value: Value = match self {
            Answer::Demographics {
                birth_date,
                member_id,
                postal_code,
            } => {
                json!({ "birth_date": birth_date, "member_id": member_id, "postal_code": postal_code })
            }
            Answer::EmailCode(code) => return code.clone(),
            Answer::Consent { grant_id } => json!({ "grant_id": grant_id }),
        };
        value.to_string()
    }
}

/// Where a sign-in stands after a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Answer this challenge next, with this session.
    Challenge {
        session: SignInSession,
        challenge: Challenge,
    },
    /// All three challenges passed and the grant is active.
    SignedIn {
        subject: String,
        patient: String,
        grant_id: String,
    },
    /// The sign-in ended. Deliberately says nothing about why: not which answer was
    /// wrong, not whether the email exists, not whether the member is locked out.
    Failed,
}

/// Failures of the identity provider itself (not wrong answers, which are [`Step::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in session is unknown, used or expired")]
    SessionExpired,
    #[error("the identity provider failed: {0}")]
    Provider(String),
}

/// The sign-in port. Implementations: Cognito (AWS) and the local stand-in.
pub trait SignIn: Send + Sync {
    /// Starts a sign-in for the member whose email is `email`. Unknown emails start too,
    /// and fail only at the end, so the pages cannot be used to enumerate members.
    fn start(
        &self,
        email: &str,
        context: &SignInContext,
    ) -> impl Future<Output = Result<Step, SignInError>> + Send;

    /// Answers the current challenge of `session`.
    fn answer(
        &self,
        session: &SignInSession,
        answer: &Answer,
        context: &SignInContext,
    ) -> impl Future<Output = Result<Step, SignInError>> + Send;
}
