//! Operator actions on the app registry that also touch grants.

use fhir_store::{KeyValueStore, ResourceStore};
use member_consent::grants;
use member_signin::SignIn;

use crate::apps::{self, NewApp, Registered};
use crate::{AuthServer, ServerError};

impl<S, L> AuthServer<S, L>
where
    S: ResourceStore + KeyValueStore + 'static,
    L: SignIn + 'static,
{
    /// Registers an app (see [`apps::register`]).
    pub async fn register_app(&self, new: &NewApp) -> Result<Registered, ServerError> {
        apps::register(self.store.as_ref(), new).await
    }

    /// Disables an app and revokes every grant it holds, so its refresh tokens stop at
    /// once and its access tokens within the FHIR handlers' grant-cache window. `false`
    /// when there is no such app.
    pub async fn disable_app(&self, client_id: &str) -> Result<bool, ServerError> {
        disable_app(self.store.as_ref(), client_id).await
    }
}

/// [`AuthServer::disable_app`] over a store alone (the local CLI uses it when no server
/// is running).
pub async fn disable_app<S>(store: &S, client_id: &str) -> Result<bool, ServerError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let Some(grant_ids) = apps::disable(store, client_id).await? else {
        return Ok(false);
    };
    for grant_id in grant_ids {
        grants::revoke(store, &grant_id, "app-disabled").await?;
    }
    Ok(true)
}
