//! The backend client registry, in the key-value store (namespace `backend-client`).
//!
//! Registered by an operator (`patient-access apps register --backend`, or the operator
//! CLI on AWS), never by self-service: a client gets data of the members attributed to
//! the provider identifiers it is registered with, so the plan must have checked who
//! it is. Backend clients live apart from the member apps' registry because they share
//! nothing with them: no redirect URIs, no secret, no grants.

use fhir_store::KeyValueStore;
use serde::{Deserialize, Serialize};
use smart_auth::JwkSet;

use crate::BackendAuthError;
use crate::scopes::SystemScopes;

const NAMESPACE: &str = "backend-client";
const MAX_LISTED: usize = 1000;
/// Keys a registration may carry inline: enough for rotation, small enough to keep
/// the record far below the store's value limit.
const MAX_INLINE_KEYS: usize = 10;

/// One registered backend client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendClient {
    pub client_id: String,
    pub name: String,
    /// The client's public keys, when registered inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Where the client publishes its keys, when registered by URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The most the client may be granted (`system/…` scopes).
    pub scope: String,
    /// The provider organisation's NPIs (Type 2): whose attribution Groups it may read.
    #[serde(default)]
    pub provider_npis: Vec<String>,
    /// The provider organisation's TINs.
    #[serde(default)]
    pub provider_tins: Vec<String>,
    /// Allowed every member (`/Patient/$export`): another plan's system, not a provider.
    #[serde(default)]
    pub all_members: bool,
    /// Another health plan (Payer-to-Payer): may call `POST /Patient/$member-match`.
    #[serde(default)]
    pub payer: bool,
    pub enabled: bool,
}

impl BackendClient {
    pub fn allowed_scopes(&self) -> SystemScopes {
        SystemScopes::parse(&self.scope)
    }
}

/// What an operator registers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewBackendClient {
    pub name: String,
    #[serde(default)]
    pub jwks: Option<JwkSet>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    pub scope: String,
    #[serde(default)]
    pub provider_npis: Vec<String>,
    #[serde(default)]
    pub provider_tins: Vec<String>,
    #[serde(default)]
    pub all_members: bool,
    #[serde(default)]
    pub payer: bool,
}

/// Checks and stores a new backend client; returns it with its new client id.
pub async fn register<K: KeyValueStore + ?Sized>(
    kv: &K,
    new: &NewBackendClient,
) -> Result<BackendClient, BackendAuthError> {
    let client = prepare(new)?;
    let value = serde_json::to_value(&client)
        .map_err(|e| BackendAuthError::Internal(format!("cannot encode the client: {e}")))?;
    if !kv
        .insert(NAMESPACE, &client.client_id, &value, None)
        .await?
    {
        return Err(BackendAuthError::Internal("client id collision".into()));
    }
    tracing::info!(target: "audit", client_id = %client.client_id, event = "backend_client.registered", "backend client registered");
    Ok(client)
}

/// Checks `new` and assigns a client id, storing nothing.
pub fn prepare(new: &NewBackendClient) -> Result<BackendClient, BackendAuthError> {
    let invalid = |why: &str| BackendAuthError::InvalidRegistration(why.to_owned());
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("the name must be 1-100 printable characters"));
    }
    match (&new.jwks, &new.jwks_uri) {
        (Some(set), None) => {
            if set.keys.is_empty() || set.keys.len() > MAX_INLINE_KEYS {
                return Err(invalid("the JWKS must hold 1 to 10 keys"));
            }
            if set.keys.iter().any(|k| k.common.key_id.is_none()) {
                return Err(invalid("every key in the JWKS needs a kid"));
            }
            if set.keys.iter().any(|k| {
                matches!(
                    k.algorithm,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
                )
            }) {
                return Err(invalid("the JWKS must hold public keys, not secrets"));
            }
            // Refuse keys that cannot be loaded (bad encoding, unsupported key type) now,
            // rather than at the client's first token request.
            if set
                .keys
                .iter()
                .any(|k| jsonwebtoken::DecodingKey::from_jwk(k).is_err())
            {
                return Err(invalid("a key in the JWKS is not a usable public key"));
            }
        }
        (None, Some(uri)) => {
            if !valid_jwks_uri(uri) {
                return Err(invalid(
                    "the JWKS URL must be https (http only on localhost)",
                ));
            }
        }
        _ => return Err(invalid("give exactly one of a JWKS and a JWKS URL")),
    }
    let scopes = SystemScopes::parse(&new.scope);
    if scopes.is_empty() {
        return Err(invalid(
            "at least one system/ read or search scope is required",
        ));
    }
    for npi in &new.provider_npis {
        if !fhir::is_valid_npi(npi) {
            return Err(invalid("an NPI is 10 digits with a valid check digit"));
        }
    }
    for tin in &new.provider_tins {
        if !fhir::is_valid_tin(tin) {
            return Err(invalid("a TIN is 9 digits"));
        }
    }
    if !new.all_members
        && !new.payer
        && new.provider_npis.is_empty()
        && new.provider_tins.is_empty()
    {
        return Err(invalid(
            "a backend client needs a provider NPI or TIN (or to be a payer, or access to all members)",
        ));
    }
    if new.payer && !(new.provider_npis.is_empty() && new.provider_tins.is_empty()) {
        return Err(invalid(
            "a payer is registered without provider NPIs or TINs: it is another plan, not a provider",
        ));
    }
    Ok(BackendClient {
        client_id: format!("svc-{}", random_hex(12)?),
        name: name.to_owned(),
        jwks: new.jwks.clone(),
        jwks_uri: new.jwks_uri.clone(),
        scope: scopes.to_string(),
        provider_npis: new.provider_npis.clone(),
        provider_tins: new.provider_tins.clone(),
        all_members: new.all_members,
        payer: new.payer,
        enabled: true,
    })
}

/// The client with this id, enabled or not. Ids that could not have been issued read
/// as absent.
pub async fn get<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
) -> Result<Option<BackendClient>, BackendAuthError> {
    if !client_id.starts_with("svc-")
        || client_id.len() > 64
        || !client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Ok(None);
    }
    match kv.get(NAMESPACE, client_id).await? {
        Some(entry) => serde_json::from_value(entry.value)
            .map(Some)
            .map_err(|e| BackendAuthError::Internal(format!("stored client is corrupt: {e}"))),
        None => Ok(None),
    }
}

/// Every registered backend client, by client id.
pub async fn list<K: KeyValueStore + ?Sized>(
    kv: &K,
) -> Result<Vec<BackendClient>, BackendAuthError> {
    kv.list(NAMESPACE, "", MAX_LISTED)
        .await?
        .into_iter()
        .map(|(_, entry)| {
            serde_json::from_value(entry.value)
                .map_err(|e| BackendAuthError::Internal(format!("stored client is corrupt: {e}")))
        })
        .collect()
}

/// Disables a client: its next token request fails (tokens already issued live out
/// their five minutes). `false` when there is no such client.
pub async fn disable<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
) -> Result<bool, BackendAuthError> {
    loop {
        let Some(entry) = kv.get(NAMESPACE, client_id).await? else {
            return Ok(false);
        };
        let mut client: BackendClient = serde_json::from_value(entry.value)
            .map_err(|e| BackendAuthError::Internal(format!("stored client is corrupt: {e}")))?;
        client.enabled = false;
        let value =
            serde_json::to_value(&client).map_err(|e| BackendAuthError::Internal(e.to_string()))?;
        if kv
            .replace(NAMESPACE, client_id, entry.version, &value, None)
            .await?
        {
            tracing::info!(target: "audit", client_id, event = "backend_client.disabled", "backend client disabled");
            return Ok(true);
        }
    }
}

fn valid_jwks_uri(url: &str) -> bool {
    let shape_ok = url.len() <= 2000
        && !url.contains('#')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    let https = url.starts_with("https://") && url.len() > "https://".len();
    let loopback = [
        "http://localhost:",
        "http://localhost/",
        "http://127.0.0.1:",
    ]
    .iter()
    .any(|p| url.starts_with(p));
    shape_ok && (https || loopback)
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, BackendAuthError> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf)
        .map_err(|_| BackendAuthError::Internal("no secure random source".into()))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_needs_keys_scopes_and_a_provider() {
        let ok = NewBackendClient {
            name: "Clinic".into(),
            jwks_uri: Some("https://clinic.example/jwks.json".into()),
            scope: "system/*.rs".into(),
            provider_npis: vec!["1234567893".into()],
            ..NewBackendClient::default()
        };
        assert!(prepare(&ok).is_ok());
        for bad in [
            NewBackendClient {
                jwks_uri: None,
                ..ok.clone()
            },
            NewBackendClient {
                jwks_uri: Some("http://clinic.example/k".into()),
                ..ok.clone()
            },
            NewBackendClient {
                scope: "patient/*.rs".into(),
                ..ok.clone()
            },
            NewBackendClient {
                provider_npis: vec![],
                ..ok.clone()
            },
            NewBackendClient {
                provider_npis: vec!["1234567890".into()],
                ..ok.clone()
            },
        ] {
            assert!(prepare(&bad).is_err(), "{bad:?} must be refused");
        }
    }
}
