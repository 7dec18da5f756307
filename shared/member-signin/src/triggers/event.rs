//! The parts of a Cognito trigger event the triggers read, deserialized leniently.
//!
//! Cognito documents that the event schema "might change" and that strict validation
//! can break sign-ins, so unknown fields are ignored, absent and `null` fields take
//! their defaults, and one struct serves all four triggers (their fields do not clash).

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::secret::{METADATA_PROOF, METADATA_TRANSACTION, SignInSecret};

/// The user attribute holding the member's Patient id. Set by enrollment with admin
/// APIs; app clients get no write access to it.
pub const PATIENT_ATTRIBUTE: &str = "custom:patient_id";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    #[serde(deserialize_with = "nullable")]
    pub user_name: String,
    #[serde(deserialize_with = "nullable")]
    pub caller_context: CallerContext,
    #[serde(deserialize_with = "nullable")]
    pub request: Request,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CallerContext {
    #[serde(deserialize_with = "nullable")]
    pub client_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Request {
    #[serde(deserialize_with = "nullable")]
    pub user_attributes: HashMap<String, Value>,
    #[serde(deserialize_with = "nullable")]
    pub session: Vec<Option<SessionEntry>>,
    #[serde(deserialize_with = "nullable")]
    pub client_metadata: HashMap<String, Value>,
    #[serde(deserialize_with = "nullable")]
    pub user_not_found: bool,
    pub challenge_name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub private_challenge_parameters: HashMap<String, Value>,
    pub challenge_answer: Option<Value>,
    pub group_configuration: Option<Value>,
}

/// One earlier challenge of this sign-in, as Cognito reports it to Define and Create.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionEntry {
    #[serde(deserialize_with = "nullable")]
    pub challenge_name: String,
    #[serde(deserialize_with = "nullable")]
    pub challenge_result: bool,
    pub challenge_metadata: Option<String>,
}

/// `null` reads as the default, like an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Event {
    /// A user attribute as text, when present and a non-empty string.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.request
            .user_attributes
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The member's Patient id, when it is a valid FHIR id.
    pub fn patient_id(&self) -> Option<&str> {
        self.attribute(PATIENT_ATTRIBUTE)
            .filter(|id| fhir::is_valid_id(id))
    }

    fn metadata(&self, key: &str) -> Option<&str> {
        self.request
            .client_metadata
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The authorization server's transaction id, only when `clientMetadata` carries a
    /// valid proof for it and this app client. Anything else in `clientMetadata` is
    /// attacker-controlled on the public API and is never read.
    pub fn proven_transaction(&self, secret: &SignInSecret) -> Option<&str> {
        let (txn, proof) = (
            self.metadata(METADATA_TRANSACTION)?,
            self.metadata(METADATA_PROOF)?,
        );
        let client = self.caller_context.client_id.as_str();
        (!client.is_empty() && secret.verify_proof(client, txn, proof)).then_some(txn)
    }

    /// The earlier challenges, `null` entries kept as `None` (they break the sequence).
    pub fn session(&self) -> &[Option<SessionEntry>] {
        &self.request.session
    }

    /// A private challenge parameter set by our Create trigger.
    pub fn private_parameter(&self, key: &str) -> Option<&str> {
        self.request
            .private_challenge_parameters
            .get(key)
            .and_then(Value::as_str)
    }

    /// The member's answer as text. Cognito passes a string; a JSON value is accepted
    /// too and rendered as its JSON text.
    pub fn answer_text(&self) -> String {
        match &self.request.challenge_answer {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}
