//! [`GrantGate`] over the grant model of `member-consent` (grants stored as FHIR
//! `Consent` resources in the same store).
//!
//! The triggers see the identity provider's app client id (`callerContext.clientId`);
//! grants are recorded under our SMART client id. [`AppCatalog::app_id`] maps one to the
//! other before any grant is read, so a grant made for one app can never be matched to
//! another: locally the ids are the same, on Cognito the registry's link records map
//! them (see [`crate::app_links`]).

use std::sync::Arc;

use fhir::clock::unix_now;
use fhir_store::ResourceStore;
use member_consent::{GrantError, grants};

use crate::app_links::APP_NAMESPACE;
use crate::ports::{ActiveGrant, AppCatalog, AppDisplay, GrantGate, PortError};

/// The grant gate the triggers use on AWS and locally.
pub struct ConsentGrants<S, A> {
    store: Arc<S>,
    apps: Arc<A>,
}

impl<S, A> ConsentGrants<S, A> {
    pub fn new(store: Arc<S>, apps: Arc<A>) -> Self {
        ConsentGrants { store, apps }
    }
}

/// Refusals are `false`; only store failures are errors (and fail the sign-in closed).
fn refused_or_error(error: GrantError) -> Result<bool, PortError> {
    match error {
        GrantError::NotFound
        | GrantError::WrongOwner
        | GrantError::WrongStatus(_)
        | GrantError::Expired
        | GrantError::Invalid(_) => Ok(false),
        other => Err(PortError(other.to_string())),
    }
}

impl<S: ResourceStore, A: AppCatalog> GrantGate for ConsentGrants<S, A> {
    async fn activate(
        &self,
        grant_id: &str,
        client_id: &str,
        patient: &str,
        transaction_id: &str,
    ) -> Result<bool, PortError> {
        let Some(app_id) = self.apps.app_id(client_id).await? else {
            return Ok(false);
        };
        let store = self.store.as_ref();
        let grant = match grants::get(store, grant_id).await {
            Ok(Some(grant)) => grant,
            Ok(None) => return Ok(false),
            Err(error) => return refused_or_error(error),
        };
        // The grant must come from this very authorization transaction.
        if grant.transaction_id.as_deref() != Some(transaction_id) {
            return Ok(false);
        }
        match grants::activate(store, grant_id, &app_id, patient).await {
            Ok(_) => Ok(true),
            Err(error) => refused_or_error(error),
        }
    }

    async fn active_grant(
        &self,
        client_id: &str,
        patient: &str,
    ) -> Result<Option<ActiveGrant>, PortError> {
        let Some(app_id) = self.apps.app_id(client_id).await? else {
            return Ok(None);
        };
        let all = match grants::list_for_patient(self.store.as_ref(), patient).await {
            Ok(all) => all,
            Err(GrantError::Invalid(_)) => return Ok(None),
            Err(error) => return Err(PortError(error.to_string())),
        };
        let now = unix_now();
        let active = all
            .into_iter()
            .find(|g| g.is_usable(now) && g.belongs_to(&app_id, patient));
        Ok(active.map(|g| ActiveGrant {
            grant_id: g.id,
            scope: g.scope,
        }))
    }

    async fn app_display(&self, client_id: &str) -> Result<Option<AppDisplay>, PortError> {
        match self.apps.app_id(client_id).await? {
            Some(app_id) => self.apps.app_display(&app_id).await,
            None => Ok(None),
        }
    }
}

/// [`AppCatalog`] over the registry in the key-value store. A disabled app has no
/// display, so no consent challenge can be created for it.
pub struct KvAppCatalog<K> {
    kv: Arc<K>,
    ids: ClientIds,
}

/// Which client ids the identity provider passes to the triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientIds {
    /// Our own SMART client ids (the local stand-in).
    Ours,
    /// Cognito app client ids, mapped through the link records. Strict: an id without
    /// a link is no app, even if an app of that name existed.
    Cognito,
}

impl<K> KvAppCatalog<K> {
    /// For an identity provider that passes our own client ids (locally).
    pub fn new(kv: Arc<K>) -> Self {
        KvAppCatalog {
            kv,
            ids: ClientIds::Ours,
        }
    }

    /// For Cognito: client ids are Cognito app client ids, resolved through
    /// [`crate::app_links`].
    pub fn for_cognito(kv: Arc<K>) -> Self {
        KvAppCatalog {
            kv,
            ids: ClientIds::Cognito,
        }
    }
}

#[derive(serde::Deserialize)]
struct RegisteredApp {
    name: String,
    #[serde(default)]
    attested: bool,
    #[serde(default)]
    privacy_policy: Option<String>,
    #[serde(default)]
    enabled: bool,
}

impl<K: fhir_store::KeyValueStore> AppCatalog for KvAppCatalog<K> {
    async fn app_id(&self, provider_client_id: &str) -> Result<Option<String>, PortError> {
        if provider_client_id.is_empty() {
            return Ok(None);
        }
        match self.ids {
            ClientIds::Ours => Ok(Some(provider_client_id.to_owned())),
            ClientIds::Cognito => {
                crate::app_links::cognito_client_link(self.kv.as_ref(), provider_client_id)
                    .await
                    .map(|link| link.map(|l| l.app_id))
                    .map_err(|e| PortError(e.to_string()))
            }
        }
    }

    async fn app_display(&self, client_id: &str) -> Result<Option<AppDisplay>, PortError> {
        if client_id.is_empty() {
            return Ok(None);
        }
        let entry = self
            .kv
            .get(APP_NAMESPACE, client_id)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        let app = entry
            .and_then(|e| serde_json::from_value::<RegisteredApp>(e.value).ok())
            .filter(|a| a.enabled);
        Ok(app.map(|a| AppDisplay {
            name: a.name,
            attested: a.attested,
            privacy_policy_url: a.privacy_policy,
        }))
    }
}
