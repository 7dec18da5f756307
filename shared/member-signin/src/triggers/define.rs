//! Define Auth Challenge: decides, from the session alone, whether to ask the next
//! challenge, issue tokens or fail.

use serde_json::{Value, json};

use super::event::Event;
use super::sequence::{CUSTOM_CHALLENGE, Progress, progress};
use crate::ports::TriggerConfig;

/// What Define tells Cognito.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Challenge,
    IssueTokens,
    Fail,
}

/// The decision, as a pure function of the event.
///
/// * An empty session starts the questions, for known and unknown users alike (the
///   first call comes from `AdminInitiateAuth`, whose `clientMetadata` Cognito does not
///   pass to Define, so no proof is expected yet).
/// * Any later call must carry the authorization server's proof: without it someone is
///   driving Cognito directly, and the sign-in fails.
/// * An unknown user never gets further than the questions.
/// * Tokens only for [`Progress::Complete`].
pub fn decide(event: &Event, config: &TriggerConfig) -> Decision {
    let session = event.session();
    if session.is_empty() {
        return Decision::Challenge;
    }
    if event.request.user_not_found || event.proven_transaction(&config.secret).is_none() {
        return Decision::Fail;
    }
    match progress(session, config.code_tries) {
        Progress::Ask { .. } => Decision::Challenge,
        Progress::Complete => Decision::IssueTokens,
        Progress::Broken => Decision::Fail,
    }
}

/// The `response` object for a decision.
pub fn define(event: &Event, config: &TriggerConfig) -> Value {
    match decide(event, config) {
        Decision::Challenge => {
            json!({ "challengeName": CUSTOM_CHALLENGE, "issueTokens": false, "failAuthentication": false })
        }
        Decision::IssueTokens => {
            json!({ "challengeName": null, "issueTokens": true, "failAuthentication": false })
        }
        Decision::Fail => {
            json!({ "challengeName": null, "issueTokens": false, "failAuthentication": true })
        }
    }
}
