//! [`GrantGate`] over the grant model of `member-consent` (grants stored as FHIR
//! `Consent` resources in the same store).
//!
//! The Cognito app client id in `callerContext.clientId` is the app's SMART client id:
//! the registry creates one Cognito app client per app and uses its id, so no mapping
//! table is needed and a grant made for one app can never be matched to another.

use std::sync::Arc;

use fhir_store::ResourceStore;
use member_consent::{GrantError, grants};

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

fn unix_now() -> i64 {
    fhir_store::kv::unix_now()
}

impl<S: ResourceStore, A: AppCatalog> GrantGate for ConsentGrants<S, A> {
    async fn activate(
        &self,
        grant_id: &str,
        client_id: &str,
        patient: &str,
        transaction_id: &str,
    ) -> Result<bool, PortError> {
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
        match grants::activate(store, grant_id, client_id, patient).await {
            Ok(_) => Ok(true),
            Err(error) => refused_or_error(error),
        }
    }

    async fn active_grant(
        &self,
        client_id: &str,
        patient: &str,
    ) -> Result<Option<ActiveGrant>, PortError> {
        let all = match grants::list_for_patient(self.store.as_ref(), patient).await {
            Ok(all) => all,
            Err(GrantError::Invalid(_)) => return Ok(None),
            Err(error) => return Err(PortError(error.to_string())),
        };
        let now = unix_now();
        let active = all
            .into_iter()
            .find(|g| g.is_usable(now) && g.belongs_to(client_id, patient));
        Ok(active.map(|g| ActiveGrant {
            grant_id: g.id,
            scope: g.scope,
        }))
    }

    async fn app_display(&self, client_id: &str) -> Result<Option<AppDisplay>, PortError> {
        self.apps.app_display(client_id).await
    }
}
