//! Payer-to-Payer in the local runner: `$member-match`, `$everything` and
//! `$davinci-data-export` mounted on `serve` (built with the bulk API by
//! [`crate::provider_access::local_backend_apis`]; the plan's `p2p opt-in|opt-out`
//! command is in [`crate::sharing`]).

use fhir_store::{KeyValueStore, ResourceStore};
use payer_to_payer::MemberMatchApi;

use crate::provider_access::BulkHandler;

impl<S: ResourceStore + KeyValueStore + 'static> BulkHandler for MemberMatchApi<S> {
    fn handle(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> std::pin::Pin<Box<dyn Future<Output = http::Response<bytes::Bytes>> + Send + '_>> {
        Box::pin(MemberMatchApi::handle(self, request))
    }
}
