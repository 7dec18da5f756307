//! Payer-to-Payer in the local runner: `POST /Patient/$member-match` mounted on
//! `serve`, and the plan's `p2p opt-in|opt-out` command (through the running server's
//! admin endpoint, or the store directly when none runs).

use std::sync::Arc;

use fhir_store::{KeyValueStore, ResourceStore};
use member_consent::provider_access::ChangedBy;
use payer_to_payer::{MemberMatchApi, MemberMatchConfig};
use smart_auth::LocalIssuer;

use crate::provider_access::{BulkHandler, backend_verifier, percent};
use crate::{DataDir, RunnerError};

impl<S: ResourceStore + KeyValueStore + 'static> BulkHandler for MemberMatchApi<S> {
    fn handle(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> std::pin::Pin<Box<dyn Future<Output = http::Response<bytes::Bytes>> + Send + '_>> {
        Box::pin(MemberMatchApi::handle(self, request))
    }
}

/// `$member-match` over `store`, trusting backend tokens from this server's `/token`.
pub fn local_member_match<S: ResourceStore + KeyValueStore + 'static>(
    store: Arc<S>,
    issuer: &LocalIssuer,
    base_url: &str,
) -> MemberMatchApi<S> {
    MemberMatchApi::new(
        store,
        backend_verifier(issuer, base_url),
        MemberMatchConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            ..MemberMatchConfig::default()
        },
    )
}

/// The plan records the member's Payer-to-Payer choice.
pub async fn set_opt_in<S: ResourceStore>(
    store: &S,
    patient: &str,
    opted_in: bool,
) -> Result<bool, member_consent::GrantError> {
    member_consent::payer_to_payer::set_opt_in(store, patient, opted_in, ChangedBy::Plan).await
}

/// `p2p opt-in|opt-out --patient ID`.
pub async fn opt_in_command(
    data: &DataDir,
    patient: &str,
    opted_in: bool,
) -> Result<(), RunnerError> {
    if !fhir::is_valid_id(patient) {
        return Err(RunnerError::Invalid(format!(
            "{patient:?} is not a valid Patient id"
        )));
    }
    let path = format!(
        "{}?patient={}&opt_in={opted_in}",
        crate::admin::P2P_OPT_IN_PATH,
        percent(patient)
    );
    let changed = match crate::commands::admin_request(data, &path, Some(Vec::new())).await? {
        Some(value) => value["changed"].as_bool().unwrap_or(false),
        None => set_opt_in(&crate::commands::open_store(data)?, patient, opted_in)
            .await
            .map_err(|e| RunnerError::Invalid(e.to_string()))?,
    };
    println!(
        "{}",
        app_registry_cli::payer_to_payer_text(patient, opted_in, changed)
    );
    Ok(())
}
