//! How an identity provider's app client maps to an app in our registry.
//!
//! On AWS every registered app gets its own Cognito app client, and Cognito names that
//! client (not our SMART `client_id`) in `callerContext.clientId`. The registry keeps
//! both directions in the key-value store:
//!
//! * the app record (namespace `app`, key = SMART client id) carries
//!   `cognito_client_id`, so the authorization server finds the client to drive;
//! * the link record (namespace `cognito-client`, key = Cognito client id) names the
//!   app and holds the Cognito client secret, so the triggers find the app.
//!
//! The secret sits in the link record in plain text, on purpose: it is useful only
//! together with the sign-in secret (every challenge needs the authorization server's
//! HMAC proof, see [`crate::secret`]), the table is already encrypted at rest and holds
//! the members' records (anyone who can read it has worse to read), and keeping it out
//! of the app record means the public pages, which may read `K#app`, never see it.
//! Locally there are no link records: the stand-in passes our own client id.

use fhir_store::{KeyValueStore, StoreError};
use serde::{Deserialize, Serialize};

/// Namespace of the app registry records as the authorization server writes them
/// (key = SMART client id); this crate reads only the fields it needs.
pub const APP_NAMESPACE: &str = "app";

/// Namespace of the link records, keyed by Cognito app client id.
pub const COGNITO_CLIENT_NAMESPACE: &str = "cognito-client";

/// One Cognito app client and the app it belongs to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CognitoClientLink {
    /// Our SMART client id.
    pub app_id: String,
    /// The Cognito app client's secret, for `SECRET_HASH`.
    pub client_secret: String,
}

impl std::fmt::Debug for CognitoClientLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoClientLink")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// Records that Cognito client `cognito_client_id` belongs to `link.app_id`.
pub async fn link_cognito_client<K: KeyValueStore + ?Sized>(
    kv: &K,
    cognito_client_id: &str,
    link: &CognitoClientLink,
) -> Result<(), StoreError> {
    let value = serde_json::to_value(link).map_err(|e| StoreError::InvalidValue(e.to_string()))?;
    kv.put(COGNITO_CLIENT_NAMESPACE, cognito_client_id, &value, None)
        .await
}

/// The link of a Cognito client id, if it was registered.
pub async fn cognito_client_link<K: KeyValueStore + ?Sized>(
    kv: &K,
    cognito_client_id: &str,
) -> Result<Option<CognitoClientLink>, StoreError> {
    if !plausible_id(cognito_client_id) {
        return Ok(None);
    }
    Ok(kv
        .get(COGNITO_CLIENT_NAMESPACE, cognito_client_id)
        .await?
        .and_then(|entry| serde_json::from_value(entry.value).ok()))
}

/// The Cognito client id of the enabled app `app_id`, if it has one.
pub async fn registered_cognito_client<K: KeyValueStore + ?Sized>(
    kv: &K,
    app_id: &str,
) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct AppRecord {
        #[serde(default)]
        cognito_client_id: Option<String>,
        #[serde(default)]
        enabled: bool,
    }
    if !plausible_id(app_id) {
        return Ok(None);
    }
    Ok(kv
        .get(APP_NAMESPACE, app_id)
        .await?
        .and_then(|entry| serde_json::from_value::<AppRecord>(entry.value).ok())
        .filter(|app| app.enabled)
        .and_then(|app| app.cognito_client_id))
}

/// Ids come from requests and events: refuse what no registry key can be before asking
/// the store.
fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.chars().any(char::is_control)
}
