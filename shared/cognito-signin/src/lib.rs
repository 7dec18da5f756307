//! [`SignIn`] on Amazon Cognito, plus member provisioning and app-client creation.
//!
//! The authorization server drives Cognito's custom authentication with the admin APIs
//! (`AdminInitiateAuth` / `AdminRespondToAuthChallenge`, `CUSTOM_AUTH`). Cognito's
//! `Session` never leaves the server: it is wrapped in [`SignInSession`] together with
//! the pool's real username. Every call carries `SECRET_HASH` (the app clients always
//! have a secret, held only here) and `ClientMetadata` with the transaction id and its
//! HMAC proof, which the triggers require.
//!
//! What moto can and cannot test: moto implements the pool, client and user APIs used by
//! [`provision`] and [`create_app_client`] (tested in `tests/moto.rs`), but runs no
//! triggers and does not accept `CUSTOM_AUTH` in `AdminInitiateAuth`. The challenge
//! flow itself is covered by the trigger tests and the local stand-in in
//! `member-signin`, which runs the same trigger code in Cognito's order.

mod provision;

/// The Cognito client, re-exported so the function wiring and the admin command build
/// one without linking the SDK themselves.
pub use aws_sdk_cognitoidentityprovider::Client as CognitoClient;

pub use provision::{
    AppClientSettings, ProvisionError, create_app_client, create_linked_app_client,
    delete_app_client, find_member, provision_member,
};

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, ChallengeNameType};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fhir_store::KeyValueStore;
use member_signin::{
    Answer, Challenge, SignIn, SignInContext, SignInError, SignInSecret, SignInSession, Step,
    cognito_client_link, registered_cognito_client,
};
use serde::{Deserialize, Serialize};

/// A Cognito app client's id and secret. The id is Cognito's, not the app's SMART
/// client id; the registry links the two (`member_signin::app_links`).
#[derive(Clone)]
pub struct AppClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AppClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Where the Cognito app client of an app comes from, by our SMART client id.
pub trait AppClients: Send + Sync {
    fn credentials(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<AppClientCredentials>, SignInError>> + Send;
}

/// A fixed set of app clients (tests, small deployments).
#[derive(Debug, Default, Clone)]
pub struct StaticAppClients(pub HashMap<String, AppClientCredentials>);

impl AppClients for StaticAppClients {
    async fn credentials(
        &self,
        client_id: &str,
    ) -> Result<Option<AppClientCredentials>, SignInError> {
        Ok(self.0.get(client_id).cloned())
    }
}

/// [`AppClients`] over the app registry in the key-value store: the enabled app's
/// `cognito_client_id`, then that client's link record for the secret. A link that
/// names another app is ignored, so a tampered app record cannot borrow a client.
pub struct KvAppClients<K> {
    kv: Arc<K>,
}

impl<K> KvAppClients<K> {
    pub fn new(kv: Arc<K>) -> Self {
        KvAppClients { kv }
    }
}

impl<K: KeyValueStore> AppClients for KvAppClients<K> {
    async fn credentials(
        &self,
        client_id: &str,
    ) -> Result<Option<AppClientCredentials>, SignInError> {
        let kv = self.kv.as_ref();
        let provider = |e: fhir_store::StoreError| SignInError::Provider(e.to_string());
        let Some(cognito_id) = registered_cognito_client(kv, client_id)
            .await
            .map_err(provider)?
        else {
            return Ok(None);
        };
        let link = cognito_client_link(kv, &cognito_id)
            .await
            .map_err(provider)?;
        Ok(link
            .filter(|link| link.app_id == client_id)
            .map(|link| AppClientCredentials {
                client_id: cognito_id,
                client_secret: link.client_secret,
            }))
    }
}

/// `SECRET_HASH`: Base64(HMAC-SHA256(client secret, username ‖ client id)).
pub fn secret_hash(username: &str, credentials: &AppClientCredentials) -> String {
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        credentials.client_secret.as_bytes(),
    );
    let message = format!("{username}{}", credentials.client_id);
    STANDARD.encode(aws_lc_rs::hmac::sign(&key, message.as_bytes()))
}

/// What [`SignInSession`] holds for Cognito: its `Session` and the pool's username
/// (`SECRET_HASH` of a respond call must use the real username, not the email alias).
#[derive(Serialize, Deserialize)]
struct Held {
    username: String,
    session: String,
}

/// The sign-in port on Cognito.
pub struct CognitoSignIn<A> {
    client: Client,
    user_pool_id: String,
    apps: A,
    secret: SignInSecret,
}

impl<A: AppClients> CognitoSignIn<A> {
    pub fn new(
        client: Client,
        user_pool_id: impl Into<String>,
        apps: A,
        secret: SignInSecret,
    ) -> Self {
        CognitoSignIn {
            client,
            user_pool_id: user_pool_id.into(),
            apps,
            secret,
        }
    }

    async fn app(
        &self,
        context: &SignInContext,
    ) -> Result<Option<AppClientCredentials>, SignInError> {
        self.apps.credentials(&context.client_id).await
    }

    /// The proof is bound to the Cognito client id, because that is the id the
    /// triggers see (`callerContext.clientId`) and check it against.
    fn metadata(
        &self,
        app: &AppClientCredentials,
        context: &SignInContext,
    ) -> HashMap<String, String> {
        self.secret
            .client_metadata(&app.client_id, &context.transaction_id)
            .into_iter()
            .collect()
    }
}

/// Cognito's answer to either call, reduced to what decides the next [`Step`].
struct Reply {
    challenge: Option<ChallengeNameType>,
    session: Option<String>,
    parameters: HashMap<String, String>,
    access_token: Option<String>,
}

/// The next step from Cognito's reply. `fallback_username` is the one already known.
fn step_from(reply: Reply, fallback_username: &str) -> Step {
    if let Some(token) = reply.access_token {
        return signed_in(&token).unwrap_or(Step::Failed);
    }
    let (Some(ChallengeNameType::CustomChallenge), Some(session)) =
        (reply.challenge, reply.session)
    else {
        return Step::Failed;
    };
    let Some(challenge) = Challenge::from_public_parameters(&reply.parameters) else {
        return Step::Failed;
    };
    let username = reply
        .parameters
        .get("USERNAME")
        .map_or(fallback_username, String::as_str);
    let held = Held {
        username: username.to_owned(),
        session,
    };
    match serde_json::to_string(&held) {
        Ok(text) => Step::Challenge {
            session: SignInSession(text),
            challenge,
        },
        Err(_) => Step::Failed,
    }
}

/// The claims Pre Token Generation put into the access token. The token came straight
/// from Cognito over TLS to this server, so its payload is read without re-verifying.
fn signed_in(access_token: &str) -> Option<Step> {
    #[derive(Deserialize)]
    struct Claims {
        sub: String,
        patient: String,
        grant_id: String,
    }
    let payload = access_token.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some(Step::SignedIn {
        subject: claims.sub,
        patient: claims.patient,
        grant_id: claims.grant_id,
    })
}

/// Errors that mean "this sign-in failed" (wrong answers, refused triggers, unknown
/// users) become [`Step::Failed`]; an invalid or expired session becomes
/// [`SignInError::SessionExpired`]; the rest are provider failures.
fn outcome<E, R>(error: SdkError<E, R>) -> Result<Step, SignInError>
where
    E: ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let code = error.code().map(str::to_owned);
    let message = error.message().unwrap_or_default().to_lowercase();
    match code.as_deref() {
        Some("ExpiredCodeException") => Err(SignInError::SessionExpired),
        Some("NotAuthorizedException") if message.contains("session") => {
            Err(SignInError::SessionExpired)
        }
        Some(
            "NotAuthorizedException"
            | "UserNotFoundException"
            | "CodeMismatchException"
            | "UserLambdaValidationException"
            | "UnexpectedLambdaException"
            | "InvalidLambdaResponseException"
            | "UserNotConfirmedException"
            | "PasswordResetRequiredException",
        ) => Ok(Step::Failed),
        _ => {
            tracing::error!(
                code = code.as_deref().unwrap_or("none"),
                "cognito sign-in call failed"
            );
            Err(SignInError::Provider(format!(
                "cognito: {}",
                code.unwrap_or_else(|| "no error code".into())
            )))
        }
    }
}

impl<A: AppClients> SignIn for CognitoSignIn<A> {
    async fn start(&self, email: &str, context: &SignInContext) -> Result<Step, SignInError> {
        let Some(app) = self.app(context).await? else {
            return Ok(Step::Failed);
        };
        let username = email.trim().to_lowercase();
        let call = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.user_pool_id)
            .client_id(&app.client_id)
            .auth_flow(AuthFlowType::CustomAuth)
            .auth_parameters("USERNAME", &username)
            .auth_parameters("SECRET_HASH", secret_hash(&username, &app))
            .set_client_metadata(Some(self.metadata(&app, context)));
        match call.send().await {
            Ok(out) => Ok(step_from(
                Reply {
                    challenge: out.challenge_name,
                    session: out.session,
                    parameters: out.challenge_parameters.unwrap_or_default(),
                    access_token: out.authentication_result.and_then(|r| r.access_token),
                },
                &username,
            )),
            Err(error) => outcome(error),
        }
    }

    async fn answer(
        &self,
        session: &SignInSession,
        answer: &Answer,
        context: &SignInContext,
    ) -> Result<Step, SignInError> {
        let held: Held =
            serde_json::from_str(&session.0).map_err(|_| SignInError::SessionExpired)?;
        let Some(app) = self.app(context).await? else {
            return Ok(Step::Failed);
        };
        let call = self
            .client
            .admin_respond_to_auth_challenge()
            .user_pool_id(&self.user_pool_id)
            .client_id(&app.client_id)
            .challenge_name(ChallengeNameType::CustomChallenge)
            .session(&held.session)
            .challenge_responses("USERNAME", &held.username)
            .challenge_responses("ANSWER", answer.to_challenge_answer())
            .challenge_responses("SECRET_HASH", secret_hash(&held.username, &app))
            .set_client_metadata(Some(self.metadata(&app, context)));
        match call.send().await {
            Ok(out) => Ok(step_from(
                Reply {
                    challenge: out.challenge_name,
                    session: out.session,
                    parameters: out.challenge_parameters.unwrap_or_default(),
                    access_token: out.authentication_result.and_then(|r| r.access_token),
                },
                &held.username,
            )),
            Err(error) => outcome(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_the_documented_construction() {
        // Computed independently: base64(hmac_sha256("secret", "userclient")).
        let app = AppClientCredentials {
            client_id: "client".into(),
            client_secret: "secret".into(),
        };
        assert_eq!(
            secret_hash("user", &app),
            "wvW87lzZoI+qQCVGmWVBJLlucdJ65huAVP1z+0MgA6E="
        );
    }

    #[test]
    fn an_access_token_from_pre_token_generation_signs_in() {
        let payload = URL_SAFE_NO_PAD
            .encode(r#"{"sub":"u-1","patient":"patient-m001","grant_id":"g-1","scope":"openid"}"#);
        let step = signed_in(&format!("h.{payload}.s"));
        assert_eq!(
            step,
            Some(Step::SignedIn {
                subject: "u-1".into(),
                patient: "patient-m001".into(),
                grant_id: "g-1".into()
            })
        );
        assert_eq!(signed_in("not a jwt"), None);
    }

    #[test]
    fn a_reply_without_a_known_challenge_fails() {
        let reply = Reply {
            challenge: Some(ChallengeNameType::SmsMfa),
            session: Some("s".into()),
            parameters: HashMap::new(),
            access_token: None,
        };
        assert_eq!(step_from(reply, "u"), Step::Failed);
        let mut parameters = HashMap::new();
        parameters.insert("challenge".to_owned(), "DEMOGRAPHICS".to_owned());
        parameters.insert("USERNAME".to_owned(), "uuid-1".to_owned());
        let reply = Reply {
            challenge: Some(ChallengeNameType::CustomChallenge),
            session: Some("s".into()),
            parameters,
            access_token: None,
        };
        match step_from(reply, "email@example.com") {
            Step::Challenge { session, challenge } => {
                assert_eq!(challenge, Challenge::Demographics);
                assert!(
                    session.0.contains("uuid-1"),
                    "the real username is kept for SECRET_HASH"
                );
            }
            other => panic!("expected a challenge, got {other:?}"),
        }
    }
}
