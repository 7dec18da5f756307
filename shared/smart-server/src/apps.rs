//! The registry of third-party apps, in the key-value store (namespace `app`).
//!
//! An app is registered by an operator (the `patient-access apps` command locally), not
//! by self-service: every app a member can connect has been looked at by the plan.

use fhir_store::{KeyValueStore, StoreError};
use serde::{Deserialize, Serialize};
use smart_auth::ScopeSet;

use crate::ServerError;
use secrets::constant_time_eq;

use crate::crypto::{hash_secret, random_secret};

/// The pseudo-app a member signs in to when managing connected apps.
pub(crate) const PORTAL_CLIENT_ID: &str = "member-portal";
/// What the portal may read: the member's own grants.
pub(crate) const PORTAL_SCOPE: &str = "patient/Consent.rs";

const NAMESPACE: &str = "app";
/// Index of grants by app, so disabling an app can end every grant it holds.
const GRANT_INDEX: &str = "app-grant";
const MAX_APPS_LISTED: usize = 1000;
const MAX_GRANTS_PER_APP: usize = 100_000;

/// The scopes an app may ask for unless registered with fewer: everything a CARIN
/// member app needs, read-only.
pub const DEFAULT_APP_SCOPES: &str = "launch/patient openid fhirUser offline_access patient/*.rs";

/// One registered app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub client_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Exact redirect URIs; `/authorize` compares byte for byte.
    pub redirect_uris: Vec<String>,
    /// Confidential clients authenticate with a secret; public ones use PKCE alone.
    pub confidential: bool,
    /// `BASE64URL(SHA-256(secret))` for confidential clients (see `crypto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_policy: Option<String>,
    /// Whether the developer attested to the CARIN code of conduct / privacy practices.
    pub attested: bool,
    pub enabled: bool,
    /// The most the app may be granted.
    pub scope: String,
    /// The app's own Cognito app client (AWS only; see `member_signin::app_links`).
    /// Locally the identity provider is given `client_id` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_client_id: Option<String>,
}

impl App {
    pub fn allowed_scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.scope)
    }

    /// Checks a presented secret against the stored hash, in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        self.secret_hash
            .as_deref()
            .is_some_and(|hash| constant_time_eq(&hash_secret(secret), hash))
    }
}

/// What an operator registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApp {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub confidential: bool,
    #[serde(default)]
    pub privacy_policy: Option<String>,
    #[serde(default)]
    pub attested: bool,
}

/// The result of a registration: the app, and its secret (shown once, never stored).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registered {
    pub app: App,
    pub client_secret: Option<String>,
}

/// Registers an app after checking its URLs (member-auth.md §8.B.75: no `javascript:`
/// privacy links, no non-https redirect URIs except loopback for development).
pub async fn register<K: KeyValueStore + ?Sized>(
    kv: &K,
    new: &NewApp,
) -> Result<Registered, ServerError> {
    let registered = prepare(new)?;
    store_new(kv, &registered.app).await?;
    Ok(registered)
}

/// Checks `new` and assigns the client id (and secret), without storing anything:
/// registration on AWS creates the Cognito app client in between, then calls
/// [`store_new`].
pub fn prepare(new: &NewApp) -> Result<Registered, ServerError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ServerError::InvalidApp(
            "the name must be 1-100 printable characters",
        ));
    }
    if new.redirect_uris.is_empty() || !new.redirect_uris.iter().all(|u| valid_redirect_uri(u)) {
        return Err(ServerError::InvalidApp(
            "redirect URIs must be absolute https URLs (http only for localhost) without a fragment",
        ));
    }
    if let Some(policy) = &new.privacy_policy
        && !valid_https_url(policy)
    {
        return Err(ServerError::InvalidApp(
            "the privacy policy must be an https URL",
        ));
    }
    let client_secret = if new.confidential {
        Some(random_secret()?)
    } else {
        None
    };
    let app = App {
        client_id: format!("app-{}", secrets::random_hex(12)?),
        name: name.to_owned(),
        description: new.description.trim().to_owned(),
        redirect_uris: new.redirect_uris.clone(),
        confidential: new.confidential,
        secret_hash: client_secret.as_deref().map(hash_secret),
        privacy_policy: new.privacy_policy.clone(),
        attested: new.attested,
        enabled: true,
        scope: DEFAULT_APP_SCOPES.to_owned(),
        cognito_client_id: None,
    };
    Ok(Registered { app, client_secret })
}

/// Stores a newly [`prepare`]d app; refuses to overwrite an existing client id.
pub async fn store_new<K: KeyValueStore + ?Sized>(kv: &K, app: &App) -> Result<(), ServerError> {
    let value = serde_json::to_value(app).map_err(|e| ServerError::Internal(e.to_string()))?;
    if !kv.insert(NAMESPACE, &app.client_id, &value, None).await? {
        return Err(ServerError::Internal("client id collision".into()));
    }
    tracing::info!(target: "audit", client_id = %app.client_id, confidential = app.confidential, event = "app.registered", "app registered");
    Ok(())
}

/// Registers the built-in member-portal client (the connected-apps page) if absent.
///
/// It has no redirect URIs and no secret, so it can never complete `/authorize` or
/// obtain tokens; it exists so the identity provider's consent challenge can name it.
pub async fn ensure_portal_app<K: KeyValueStore + ?Sized>(kv: &K) -> Result<(), ServerError> {
    let app = portal_app();
    let value = serde_json::to_value(&app).map_err(|e| ServerError::Internal(e.to_string()))?;
    kv.insert(NAMESPACE, &app.client_id, &value, None).await?;
    Ok(())
}

/// The client id of the built-in member-portal client.
pub fn portal_client_id() -> &'static str {
    PORTAL_CLIENT_ID
}

fn portal_app() -> App {
    App {
        client_id: PORTAL_CLIENT_ID.to_owned(),
        name: "Your connected apps page".to_owned(),
        description: "Where members see and disconnect their apps.".to_owned(),
        redirect_uris: Vec::new(),
        confidential: false,
        secret_hash: None,
        privacy_policy: None,
        attested: true,
        enabled: true,
        scope: PORTAL_SCOPE.to_owned(),
        cognito_client_id: None,
    }
}

/// Records the Cognito app client of an existing app (the portal's, whose record the
/// authorization server creates at start-up). `false` when there is no such app.
pub async fn set_cognito_client<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
    cognito_client_id: &str,
) -> Result<bool, ServerError> {
    update(kv, client_id, |app| {
        app.cognito_client_id = Some(cognito_client_id.to_owned());
    })
    .await
}

/// Read-modify-write of one app record with the store's version check, retried on a
/// concurrent write. `false` when there is no such app.
async fn update<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
    change: impl Fn(&mut App),
) -> Result<bool, ServerError> {
    loop {
        let Some(entry) = kv.get(NAMESPACE, client_id).await? else {
            return Ok(false);
        };
        let mut app: App = serde_json::from_value(entry.value)
            .map_err(|e| ServerError::Internal(format!("stored app is corrupt: {e}")))?;
        change(&mut app);
        let value = serde_json::to_value(&app).map_err(|e| ServerError::Internal(e.to_string()))?;
        if kv
            .replace(NAMESPACE, client_id, entry.version, &value, None)
            .await?
        {
            return Ok(true);
        }
    }
}

/// The app with this client id, enabled or not.
pub async fn get<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
) -> Result<Option<App>, ServerError> {
    if client_id.is_empty() || client_id.len() > 100 || client_id.chars().any(char::is_control) {
        return Ok(None);
    }
    match kv.get(NAMESPACE, client_id).await? {
        Some(entry) => serde_json::from_value(entry.value)
            .map(Some)
            .map_err(|e| ServerError::Internal(format!("stored app is corrupt: {e}"))),
        None => Ok(None),
    }
}

/// The enabled app with this client id.
pub async fn enabled<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
) -> Result<Option<App>, ServerError> {
    Ok(get(kv, client_id).await?.filter(|app| app.enabled))
}

/// Every registered app, by client id.
pub async fn list<K: KeyValueStore + ?Sized>(kv: &K) -> Result<Vec<App>, ServerError> {
    kv.list(NAMESPACE, "", MAX_APPS_LISTED)
        .await?
        .into_iter()
        .map(|(_, entry)| {
            serde_json::from_value(entry.value)
                .map_err(|e| ServerError::Internal(format!("stored app is corrupt: {e}")))
        })
        .collect()
}

/// Disables an app and returns the grants it held (the caller revokes them). `None`
/// when there is no such app.
pub async fn disable<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
) -> Result<Option<Vec<String>>, ServerError> {
    if !update(kv, client_id, |app| app.enabled = false).await? {
        return Ok(None);
    }
    tracing::info!(target: "audit", client_id, event = "app.disabled", "app disabled");
    let grants = kv
        .list(GRANT_INDEX, &format!("{client_id}/"), MAX_GRANTS_PER_APP)
        .await?
        .into_iter()
        .filter_map(|(key, _)| key.rsplit('/').next().map(str::to_owned))
        .collect();
    Ok(Some(grants))
}

/// Records that `grant_id` belongs to `client_id` (for [`disable`]).
pub async fn index_grant<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
    grant_id: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    let key = format!("{client_id}/{grant_id}");
    kv.put(
        GRANT_INDEX,
        &key,
        &serde_json::Value::Null,
        Some(expires_at),
    )
    .await
}

fn valid_https_url(url: &str) -> bool {
    url.starts_with("https://") && url.len() > "https://".len() && url_shape_ok(url)
}

fn url_shape_ok(url: &str) -> bool {
    url.len() <= 2000
        && !url.contains('#')
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '\''))
}

/// https anywhere; http only on loopback (local development and the tests).
fn valid_redirect_uri(url: &str) -> bool {
    if valid_https_url(url) {
        return true;
    }
    let loopback = [
        "http://localhost:",
        "http://localhost/",
        "http://127.0.0.1:",
        "http://127.0.0.1/",
    ];
    loopback.iter().any(|p| url.starts_with(p)) && url_shape_ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_at_registration() {
        assert!(valid_redirect_uri("https://app.example/cb"));
        assert!(valid_redirect_uri("http://localhost:8000/cb"));
        assert!(!valid_redirect_uri("http://app.example/cb"));
        assert!(!valid_redirect_uri("https://app.example/cb#frag"));
        assert!(!valid_redirect_uri("javascript:alert(1)"));
        assert!(!valid_https_url("javascript:alert(1)"));
        assert!(!valid_https_url("https://x.example/\"onmouseover"));
    }
}
