//! Payer-to-Payer in the local runner: `POST /Patient/$member-match` mounted on
//! `serve` (the plan's `p2p opt-in|opt-out` command is in [`crate::sharing`]).

use std::sync::Arc;

use fhir_store::{KeyValueStore, ResourceStore};
use payer_to_payer::{MemberMatchApi, MemberMatchConfig};
use smart_auth::LocalIssuer;

use crate::provider_access::{BulkHandler, backend_verifier};

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
