//! The authorization server as one Lambda function. It lives in its own crate so that
//! only this function links Cognito, KMS and the server: a cargo feature would be
//! unified across a `--workspace` build into every FHIR function.
//!
//! Every endpoint of `smart_server::AuthServer` (discovery, `/authorize` and its pages,
//! `/token`, `/revoke`, `/introspect`, `/connected-apps`) is served by one function:
//! the expensive part of a cold start (the KMS public key, the SDK clients) is then
//! paid once for the whole launch, which crosses every endpoint within a minute, and
//! the endpoints share one least-privilege role anyway.
//!
//! Wiring: the DynamoDB table for apps, transactions, codes and grants; Cognito for
//! sign-in, driven with each app's own Cognito client from the registry
//! ([`KvAppClients`]); KMS for signing. As for the FHIR functions, the issuer (= the
//! FHIR base URL) is `FHIR_BASE_URL` or the domain the request came through
//! ([`lambda_adapter::BaseUrl`]), with one server per base URL.
//!
//! Environment: `TABLE_NAME`, `FHIR_BASE_URL` (optional), `USER_POOL_ID`,
//! `SIGNING_KEY_ID` (the KMS key), `SIGNIN_SECRET_ARN` (the secret shared with the
//! triggers, read from Secrets Manager at cold start and every few minutes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use cognito_signin::{CognitoClient, CognitoSignIn, KvAppClients};
use kms_signer::{KmsClient, KmsSigner};
use lambda_http::{Body, Request, Response};
use member_signin::SignInSecret;
use secrets::{KeyRefresher, SourceError};
use secrets_manager::SecretsManagerSource;
use smart_auth::{JwkSet, TokenSigner};
use smart_server::{AuthConfig, AuthServer, ClientAddress};
use store_dynamodb::DynamoStore;

use lambda_adapter::{BaseUrl, ConfigError, from_lambda, required, to_lambda};

/// The authorization server on AWS.
pub type AwsAuthServer = AuthServer<DynamoStore, CognitoSignIn<KvAppClients<DynamoStore>>>;

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthStartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("sign-in secret: {0}")]
    Secret(#[from] member_signin::secret::WeakSecret),
    #[error("sign-in secret: {0}")]
    Source(#[from] SourceError),
    #[error("signing key: {0}")]
    Signer(#[from] kms_signer::KmsSignerError),
    #[error("app registry: {0}")]
    Registry(#[from] smart_server::ServerError),
}

/// What the authorization server reads from its environment.
struct AuthEnv {
    base_url: BaseUrl,
    table_name: String,
    user_pool_id: String,
    signing_key_id: String,
    signin_secret_arn: String,
}

impl AuthEnv {
    fn from_env() -> Result<Self, AuthStartError> {
        Ok(AuthEnv {
            base_url: BaseUrl::from_env(),
            table_name: required("TABLE_NAME")?,
            user_pool_id: required("USER_POOL_ID")?,
            signing_key_id: required("SIGNING_KEY_ID")?,
            signin_secret_arn: required("SIGNIN_SECRET_ARN")?,
        })
    }
}

/// The authorization server function: one [`AwsAuthServer`] per base URL (more than
/// one only without `FHIR_BASE_URL`, when each API Gateway domain is its own issuer);
/// they share the store, the sign-in port and the signer.
pub struct AuthServerFunction {
    base_url: BaseUrl,
    store: Arc<DynamoStore>,
    sign_in: Arc<CognitoSignIn<KvAppClients<DynamoStore>>>,
    signer: Arc<KmsSigner>,
    jwks: JwkSet,
    servers: Mutex<HashMap<String, Arc<AwsAuthServer>>>,
    /// Shares its keys with the sign-in port's copy; a refresh installs into both.
    signin_secret: SignInSecret,
    secret_keys: KeyRefresher<SecretsManagerSource>,
}

impl AuthServerFunction {
    /// The cold start: SDK clients, the KMS public key, the portal client's record.
    pub async fn from_env() -> Result<Self, AuthStartError> {
        let env = AuthEnv::from_env()?;
        let aws = aws_config::load_from_env().await;
        let source = SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(&aws),
            env.signin_secret_arn,
        );
        let (secret_keys, ring) =
            KeyRefresher::load(source, secrets::ring::DEFAULT_REFRESH).await?;
        let signin_secret = SignInSecret::from_ring(&ring)?;
        let store = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            env.table_name,
        ));
        let signer = KmsSigner::connect(KmsClient::new(&aws), env.signing_key_id).await?;
        let sign_in = CognitoSignIn::new(
            CognitoClient::new(&aws),
            env.user_pool_id,
            KvAppClients::new(Arc::clone(&store)),
            signin_secret.clone(),
        );
        smart_server::apps::ensure_portal_app(store.as_ref()).await?;
        Ok(AuthServerFunction {
            base_url: env.base_url,
            store,
            sign_in: Arc::new(sign_in),
            jwks: signer.jwks(),
            signer: Arc::new(signer),
            servers: Mutex::new(HashMap::new()),
            signin_secret,
            secret_keys,
        })
    }

    /// Answers one request; failures are the server's own error responses.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        if let Some(ring) = self.secret_keys.refresh_if_due(Instant::now()).await
            && let Err(error) = self.signin_secret.install(&ring)
        {
            tracing::error!(%error, "rotated sign-in secret refused; keeping the current keys");
        }
        let server = self.server_for(&self.base_url.for_request(&request));
        // The caller's address (the edge's or API Gateway's, never a header the caller
        // sets): one of the sources sign-in answers are throttled by.
        let address = lambda_adapter::client_address(&request);
        let mut request = from_lambda(request);
        if let Some(address) = address {
            request.extensions_mut().insert(ClientAddress(address));
        }
        to_lambda(server.handle(request).await)
    }

    fn server_for(&self, base_url: &str) -> Arc<AwsAuthServer> {
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        let server = servers.entry(base_url.to_owned()).or_insert_with(|| {
            let signer: Arc<dyn TokenSigner> = self.signer.clone();
            Arc::new(AuthServer::new(
                Arc::clone(&self.store),
                Arc::clone(&self.sign_in),
                signer,
                self.jwks.clone(),
                AuthConfig::new(base_url),
            ))
        });
        Arc::clone(server)
    }
}
