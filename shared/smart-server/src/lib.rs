//! The SMART App Launch authorization server ("Flow B", member-auth.md §1.7).
//!
//! Cognito (or, locally, its in-process stand-in) proves who the member is and gates
//! consent through the [`SignIn`] port; its tokens never leave this server. We then
//! mint our own RS256 tokens through a [`TokenSigner`] (KMS on AWS, a local key
//! otherwise) with `iss` = `aud` = the FHIR base URL, exactly the consented scopes, the
//! member's `patient`, `fhirUser` and the `grant_id` the FHIR handlers check.
//!
//! Endpoints ([`AuthServer::handle`] routes them):
//!
//! | path | what |
//! |---|---|
//! | `/.well-known/smart-configuration`, `/.well-known/openid-configuration`, `/.well-known/jwks.json` | discovery |
//! | `GET`/`POST /authorize` | validates the request, then the pages: email → identity questions → one-time code → consent |
//! | `POST /authorize/{email,identity,code,consent}` | the page forms |
//! | `POST /token` | `authorization_code` (PKCE S256), `refresh_token` (rotated), and `client_credentials` with a JWT assertion (backend services, crate `backend-auth`) |
//! | `POST /revoke`, `POST /introspect` | RFC 7009, RFC 7662 |
//! | `GET /connected-apps`, `POST /connected-apps/revoke` | the member's apps, behind the same sign-in |
//! | `POST /connected-apps/provider-access` | the member's Provider Access opt-out (`choice` = `opt-out` or `opt-in`) |
//! | `POST /connected-apps/payer-to-payer` | the member's Payer-to-Payer opt-in (`choice` = `opt-in` or `opt-out`) |
//! | `POST /connected-apps/payer-to-payer/request` | the member asks this plan to get their records from another plan (`payer`, `card`, `coverage` = `previous` or `concurrent`, `all-data` = `yes`) |
//!
//! State lives in the stores: transactions, codes, refresh handles, member sessions and
//! apps in the [`KeyValueStore`] (only hashes of the secrets that index them), grants
//! as FHIR `Consent` in the [`ResourceStore`]. The server holds nothing between
//! requests, so any number of Lambda instances can serve one launch.

mod apps_api;
mod authorize;
mod backend;
mod crypto;
mod discovery;
mod error;
mod members;
use member_consent::Sharing;
mod pages;
mod respond;
mod throttle;
mod token;

pub mod apps;

pub use apps::{App, NewApp, Registered};
pub use apps_api::disable_app;
pub use crypto::{hash_secret, pkce_matches};
pub use discovery::{CAPABILITIES, jwks_uri, openid_configuration, smart_configuration};
pub use error::{OAuthCode, OAuthError, ServerError};
pub use throttle::ClientAddress;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
pub(crate) use fhir::clock::unix_now;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Method, Request, Response, StatusCode};
use member_signin::SignIn;
use smart_auth::{JwkSet, StaticJwks, TokenSigner, TokenVerifier, VerifierConfig};

/// How the authorization server is set up.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Our issuer URL = the FHIR base URL (no trailing slash). Tokens carry it as both
    /// `iss` and `aud`.
    pub issuer: String,
    /// Access-token lifetime; SMART says at most one hour.
    pub access_token_lifetime: Duration,
    /// Authorization-code lifetime (≤ 60 s).
    pub code_lifetime: Duration,
    /// How long a sign-in may take from `/authorize` to the code (≤ 15 min, Cognito's
    /// longest session).
    pub transaction_lifetime: Duration,
    /// Refresh-handle lifetime.
    pub refresh_lifetime: Duration,
    /// How long a grant lasts.
    pub grant_lifetime: Duration,
    /// How long a member's connected-apps session lasts.
    pub member_session_lifetime: Duration,
    /// Mark cookies `Secure`. True whenever the issuer is https.
    pub secure_cookies: bool,
    /// Delays per source (transaction, address) after failed sign-in answers.
    pub signin_throttle: member_signin::throttle::ThrottlePolicy,
}

impl AuthConfig {
    pub fn new(issuer: impl Into<String>) -> AuthConfig {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        AuthConfig {
            secure_cookies: issuer.starts_with("https://"),
            signin_throttle: Default::default(),
            issuer,
            access_token_lifetime: Duration::from_secs(3600),
            code_lifetime: Duration::from_secs(60),
            transaction_lifetime: Duration::from_secs(15 * 60),
            refresh_lifetime: Duration::from_secs(90 * 24 * 3600),
            grant_lifetime: Duration::from_secs(365 * 24 * 3600),
            member_session_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// The authorization server over its ports: `S` stores resources (grants) and
/// key-value records, `L` signs members in, and the signer mints tokens.
pub struct AuthServer<S, L> {
    store: Arc<S>,
    sign_in: Arc<L>,
    signer: Arc<dyn TokenSigner>,
    jwks: JwkSet,
    /// Verifies our own access tokens at `/introspect` and `/revoke`.
    verifier: TokenVerifier,
    /// Backend clients' keys fetched from their `jwks_uri` (SMART Backend Services).
    backend_keys: backend_auth::ClientKeyCache,
    config: AuthConfig,
}

impl<S, L> AuthServer<S, L>
where
    S: ResourceStore + KeyValueStore + 'static,
    L: SignIn + 'static,
{
    /// `jwks` is the public half of `signer`'s key (published at `/.well-known/jwks.json`).
    pub fn new(
        store: Arc<S>,
        sign_in: Arc<L>,
        signer: Arc<dyn TokenSigner>,
        jwks: JwkSet,
        config: AuthConfig,
    ) -> AuthServer<S, L> {
        let verifier = TokenVerifier::new(VerifierConfig::new(
            config.issuer.clone(),
            config.issuer.clone(),
            Arc::new(StaticJwks::new(jwks.clone())),
        ));
        AuthServer {
            store,
            sign_in,
            signer,
            jwks,
            verifier,
            backend_keys: backend_auth::ClientKeyCache::new(Arc::new(backend_auth::HttpKeyFetcher)),
            config,
        }
    }

    /// Prepares the stores: registers the built-in member-portal client. Call once at
    /// start-up.
    pub async fn init(&self) -> Result<(), ServerError> {
        apps::ensure_portal_app(self.store.as_ref()).await
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Whether `path` is one of ours (see [`serves_path`]).
    pub fn serves(path: &str) -> bool {
        serves_path(path)
    }

    /// Answers one request. Never fails: errors become OAuth JSON or an HTML page.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        match (method.clone(), path.as_str()) {
            (Method::GET | Method::HEAD, "/.well-known/smart-configuration") => {
                respond::public_json(&smart_configuration(&self.config.issuer))
            }
            (Method::GET | Method::HEAD, "/.well-known/openid-configuration") => {
                respond::public_json(&openid_configuration(&self.config.issuer))
            }
            (Method::GET | Method::HEAD, "/.well-known/jwks.json") => {
                let jwks = serde_json::to_value(&self.jwks).unwrap_or_default();
                respond::public_json(&jwks)
            }
            (Method::GET | Method::POST, "/authorize") => self.authorize(&request).await,
            (Method::POST, "/authorize/email") => self.email_step(&request).await,
            (Method::POST, "/authorize/identity") => self.identity_step(&request).await,
            (Method::POST, "/authorize/code") => self.code_step(&request).await,
            (Method::POST, "/authorize/consent") => self.consent_step(&request).await,
            (Method::POST, "/token") => self.token(&request).await,
            (Method::POST, "/revoke") => self.revoke(&request).await,
            (Method::POST, "/introspect") => self.introspect(&request).await,
            (Method::GET, "/connected-apps") => self.connected_apps(&request).await,
            (Method::POST, "/connected-apps/revoke") => self.member_revoke(&request).await,
            (Method::POST, "/connected-apps/provider-access") => {
                self.member_sharing(&request, Sharing::ProviderAccess).await
            }
            (Method::POST, "/connected-apps/payer-to-payer") => {
                self.member_sharing(&request, Sharing::PayerToPayer).await
            }
            (Method::POST, "/connected-apps/payer-to-payer/request") => {
                self.member_p2p_request(&request).await
            }
            _ => pages::error_page(
                if AuthServer::<S, L>::serves(&path) {
                    StatusCode::METHOD_NOT_ALLOWED
                } else {
                    StatusCode::NOT_FOUND
                },
                "Not found",
                "There is no page at this address.",
            ),
        }
    }

    /// The app registry, for the operator commands and the local admin endpoint.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// Whether `path` belongs to the authorization server (the local runner routes on this).
pub fn serves_path(path: &str) -> bool {
    path.starts_with("/.well-known/")
        || path == "/authorize"
        || path.starts_with("/authorize/")
        || matches!(path, "/token" | "/revoke" | "/introspect")
        || path == "/connected-apps"
        || path.starts_with("/connected-apps/")
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}
