//! The authorization server in the local runner: the in-process Cognito stand-in
//! (`member_signin::LocalSignIn`, running the very trigger code the Lambda runs, with
//! one-time codes printed to the console) behind `smart_server::AuthServer`, signing
//! with the local issuer's key.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use member_signin::ports::{TriggerConfig, TriggerPorts};
use member_signin::{
    ConsentGrants, ConsoleCodeSender, KvAppCatalog, LocalSignIn, SignInSecret, StoreMemberFacts,
};
use smart_auth::LocalIssuer;
use smart_server::{AuthConfig, AuthServer};
use store_redb::RedbStore;

use crate::RunnerError;

/// The local sign-in stand-in over the embedded store.
pub type LocalMemberSignIn = LocalSignIn<
    StoreMemberFacts<RedbStore>,
    RedbStore,
    ConsoleCodeSender,
    ConsentGrants<RedbStore, KvAppCatalog<RedbStore>>,
>;

/// Lets [`crate::LocalServer`] hold the authorization server without naming its type
/// parameters.
pub trait AuthHandler: Send + Sync {
    fn handle(
        &self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send + '_>>;
}

impl<L: member_signin::SignIn + 'static> AuthHandler for AuthServer<RedbStore, L> {
    fn handle(
        &self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send + '_>> {
        Box::pin(AuthServer::handle(self, request))
    }
}

/// Builds the authorization server for `serve`, enrolling the demo members (email on
/// file → Patient id) in the stand-in.
pub async fn local_auth_server(
    store: Arc<RedbStore>,
    issuer: Arc<LocalIssuer>,
    sign_in_keys: &secrets::KeyRing,
    base_url: &str,
    members: &[(String, String)],
) -> Result<AuthServer<RedbStore, LocalMemberSignIn>, RunnerError> {
    let secret = SignInSecret::from_ring(sign_in_keys)
        .map_err(|e| RunnerError::Invalid(format!("sign-in secret: {e}")))?;
    let mut config = TriggerConfig::new(secret);
    config.fhir_base_url = Some(base_url.to_owned());
    let ports = TriggerPorts {
        members: Arc::new(StoreMemberFacts::new(Arc::clone(&store))),
        kv: Arc::clone(&store),
        sender: Arc::new(ConsoleCodeSender),
        grants: Arc::new(ConsentGrants::new(
            Arc::clone(&store),
            Arc::new(KvAppCatalog::new(Arc::clone(&store))),
        )),
        config,
    };
    let sign_in = LocalSignIn::new(ports);
    for (email, patient) in members {
        sign_in
            .provision(email, patient)
            .await
            .map_err(|e| RunnerError::Invalid(format!("enrolling a member: {e}")))?;
    }
    let jwks = issuer.jwks();
    let server = AuthServer::new(
        store,
        Arc::new(sign_in),
        issuer,
        jwks,
        AuthConfig::new(base_url),
    );
    server
        .init()
        .await
        .map_err(|e| RunnerError::Store(e.to_string()))?;
    Ok(server)
}
