//! The plan's side of a member's data-sharing choices in the local runner: `provider-access
//! opt-out|opt-in` and `p2p opt-in|opt-out`, through the running server's admin endpoint,
//! or the store directly when none runs. The same Consent the member's own choice on
//! `/connected-apps` writes ([`member_consent::Sharing`]).

use fhir_store::ResourceStore;
use member_consent::{ChangedBy, Sharing};

use crate::provider_access::percent;
use crate::{DataDir, RunnerError};

/// The admin endpoint's path for one kind of sharing: `?patient=ID&on=true|false`.
pub fn admin_path(kind: Sharing) -> &'static str {
    match kind {
        Sharing::ProviderAccess => crate::admin::OPT_OUT_PATH,
        Sharing::PayerToPayer => crate::admin::P2P_OPT_IN_PATH,
    }
}

/// The plan turns a kind of sharing on or off for a member. Returns whether anything
/// changed.
pub async fn set<S: ResourceStore>(
    store: &S,
    kind: Sharing,
    patient: &str,
    on: bool,
) -> Result<bool, member_consent::GrantError> {
    kind.set(store, patient, on, ChangedBy::Plan).await
}

/// `provider-access opt-out|opt-in --patient ID` and `p2p opt-in|opt-out --patient ID`.
pub async fn command(
    data: &DataDir,
    kind: Sharing,
    patient: &str,
    on: bool,
) -> Result<(), RunnerError> {
    crate::commands::valid_patient_id(patient)?;
    let path = format!("{}?patient={}&on={on}", admin_path(kind), percent(patient));
    let changed = match crate::commands::admin_request(data, &path, Some(Vec::new())).await? {
        Some(value) => value["changed"].as_bool().unwrap_or(false),
        None => set(&crate::commands::open_store(data)?, kind, patient, on)
            .await
            .map_err(|e| RunnerError::Invalid(e.to_string()))?,
    };
    println!(
        "{}",
        app_registry_cli::sharing_text(patient, kind, on, changed)
    );
    Ok(())
}
