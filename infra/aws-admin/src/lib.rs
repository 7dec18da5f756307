//! App registration on AWS: each app gets its own Cognito app client, linked in the
//! registry, before its record is stored; disabling an app deletes that client. And
//! the plan's side of a member's data-sharing choices ([`set_sharing`]).
//!
//! Order matters: the Cognito client and its link record are written first and the
//! app record last, so an app that exists always has a working client. A failure in
//! between leaves at most an unused Cognito client that no app points to.

use cognito_signin::{
    AppClientSettings, CognitoClient, create_linked_app_client, delete_app_client,
};
use fhir_store::{KeyValueStore, ResourceStore};
use smart_server::{NewApp, Registered, ServerError, apps};

/// An admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Registry(#[from] ServerError),
    #[error(transparent)]
    Cognito(#[from] cognito_signin::ProvisionError),
    #[error("no such app: {0}")]
    NoSuchApp(String),
    #[error(transparent)]
    Consent(#[from] member_consent::GrantError),
}

/// The plan turns a kind of sharing on or off for a member (Provider Access opt-out
/// or opt-in, Payer-to-Payer opt-in from enrollment or opt-out), in the deployed table:
/// the same Consent, written the same way, as the local `patient-access
/// provider-access|p2p …`, the attribution file's `opt_out` column and the member's own
/// choice on `/connected-apps`, so it applies to every request that starts after it.
/// Returns whether anything changed (setting the current value again writes no
/// version).
pub async fn set_sharing<S: ResourceStore + ?Sized>(
    store: &S,
    kind: member_consent::Sharing,
    patient: &str,
    on: bool,
) -> Result<bool, AdminError> {
    Ok(kind
        .set(store, patient, on, member_consent::ChangedBy::Plan)
        .await?)
}

/// Where apps are registered: the stack's table and user pool.
pub struct Deployment<'a, K: ?Sized> {
    pub cognito: &'a CognitoClient,
    pub user_pool_id: &'a str,
    pub kv: &'a K,
}

impl<K: KeyValueStore + ?Sized> Deployment<'_, K> {
    /// Registers `new` with its own Cognito app client. Also gives the built-in
    /// member-portal client a Cognito client if it has none yet, so the members'
    /// connected-apps page works as soon as there is an app to connect.
    pub async fn register_app(&self, new: &NewApp) -> Result<Registered, AdminError> {
        self.ensure_portal_client().await?;
        let mut registered = apps::prepare(new)?;
        let cognito_id = self.linked_client(&registered.app.client_id).await?;
        registered.app.cognito_client_id = Some(cognito_id);
        apps::store_new(self.kv, &registered.app).await?;
        Ok(registered)
    }

    /// Creates the portal's Cognito client unless its record already names one.
    pub async fn ensure_portal_client(&self) -> Result<(), AdminError> {
        let portal = apps::portal_client_id();
        apps::ensure_portal_app(self.kv).await?;
        let has_client = apps::get(self.kv, portal)
            .await?
            .is_some_and(|app| app.cognito_client_id.is_some());
        if has_client {
            return Ok(());
        }
        let cognito_id = self.linked_client(portal).await?;
        if apps::set_cognito_client(self.kv, portal, &cognito_id).await? {
            Ok(())
        } else {
            Err(AdminError::NoSuchApp(portal.to_owned()))
        }
    }

    async fn linked_client(&self, app_id: &str) -> Result<String, AdminError> {
        Ok(create_linked_app_client(
            self.cognito,
            self.user_pool_id,
            self.kv,
            app_id,
            &AppClientSettings::default(),
        )
        .await?)
    }
}

impl<K: ResourceStore + KeyValueStore + ?Sized> Deployment<'_, K> {
    /// Disables an app: the registry record first (its grants end as if revoked, no new
    /// token or refresh), then its Cognito app client is deleted, so nothing can drive
    /// a sign-in with it either. Returns whether a Cognito client was deleted.
    pub async fn disable_app(&self, client_id: &str) -> Result<bool, AdminError> {
        let app = apps::get(self.kv, client_id)
            .await?
            .ok_or_else(|| AdminError::NoSuchApp(client_id.to_owned()))?;
        if !smart_server::disable_app(self.kv, client_id).await? {
            return Err(AdminError::NoSuchApp(client_id.to_owned()));
        }
        match app.cognito_client_id {
            Some(cognito_id) => {
                Ok(delete_app_client(self.cognito, self.user_pool_id, &cognito_id).await?)
            }
            None => Ok(false),
        }
    }
}
