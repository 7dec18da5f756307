//! The local stand-in for Cognito: an in-process user pool that runs the very same
//! trigger functions in the order Cognito runs them.
//!
//! ```text
//! start:   PreAuthentication → Define(session=[]) → Create  → Challenge
//!                            → fail                        → Failed
//! answer:  Verify → Define(session+result) → Create          → Challenge
//!                                          → PreTokenGen     → SignedIn
//!                                          → fail            → Failed
//! ```
//! Like Cognito it keeps the challenge state server-side behind an opaque, single-use
//! session that expires, passes `clientMetadata` (transaction id and proof) to the
//! triggers only on answers (`AdminInitiateAuth`'s metadata does not reach them), runs
//! the triggers with `userNotFound = true` for unknown emails, and fails the sign-in
//! when a trigger returns an error. The one-time code goes to the console
//! ([`ConsoleCodeSender`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fhir_store::{KeyValueStore, ResourceStore};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::facts::StoreMemberFacts;
use crate::grants::{ConsentGrants, KvAppCatalog};
use crate::normalize;
use crate::ports::{
    CodeSender, GrantGate, MemberDirectory, PortError, TriggerConfig, TriggerPorts,
};
use crate::secret::SignInSecret;
use crate::secret::random_token;
use crate::triggers::{ADMIN_SCOPE, CUSTOM_CHALLENGE, PATIENT_ATTRIBUTE, handle_trigger};
use crate::{Answer, Challenge, SignIn, SignInContext, SignInError, SignInSession, Step};

/// Where the local user pool keeps its users: email → opaque username and Patient id.
pub const USER_NAMESPACE: &str = "local-signin-user";

/// The ports of local mode over one embedded store: member facts from its Patient and
/// Coverage, counters, codes and users in its key-value records, grants as its
/// `Consent` resources, apps from its registry records, codes on the console.
pub type LocalPorts<St> =
    TriggerPorts<StoreMemberFacts<St>, St, ConsoleCodeSender, ConsentGrants<St, KvAppCatalog<St>>>;

/// Builds [`LocalPorts`]: what `patient-access serve` hands to [`LocalSignIn::new`].
pub fn local_ports<St>(
    store: Arc<St>,
    secret: SignInSecret,
    fhir_base_url: Option<String>,
) -> LocalPorts<St>
where
    St: ResourceStore + KeyValueStore,
{
    let mut config = TriggerConfig::new(secret);
    config.fhir_base_url = fhir_base_url;
    TriggerPorts {
        members: Arc::new(StoreMemberFacts::new(Arc::clone(&store))),
        grants: Arc::new(ConsentGrants::new(
            Arc::clone(&store),
            Arc::new(KvAppCatalog::new(Arc::clone(&store))),
        )),
        sender: Arc::new(ConsoleCodeSender),
        kv: store,
        config,
    }
}

/// Cognito's `AuthSessionValidity` as our pool sets it.
const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(15 * 60);

/// A user of the local pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    username: String,
    patient_id: String,
}

/// Who a sign-in is for: a user of the pool, or an email that is not one.
#[derive(Debug, Clone)]
struct Subject {
    user_name: String,
    attributes: Value,
    not_found: bool,
    patient_id: Option<String>,
}

/// A challenge waiting for its answer.
struct Pending {
    subject: Subject,
    client_id: String,
    history: Vec<Value>,
    private_parameters: Value,
    metadata: Value,
    expires: Instant,
}

/// The in-process Cognito.
pub struct LocalSignIn<D, K, S, G> {
    ports: TriggerPorts<D, K, S, G>,
    sessions: Mutex<HashMap<String, Pending>>,
    session_ttl: Duration,
}

impl<D, K, S, G> LocalSignIn<D, K, S, G>
where
    D: MemberDirectory,
    K: KeyValueStore,
    S: CodeSender,
    G: GrantGate,
{
    pub fn new(ports: TriggerPorts<D, K, S, G>) -> Self {
        LocalSignIn {
            ports,
            sessions: Mutex::new(HashMap::new()),
            session_ttl: DEFAULT_SESSION_TTL,
        }
    }

    /// How long a session waits for its answer (Cognito: 3–15 minutes).
    pub fn with_session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    pub fn ports(&self) -> &TriggerPorts<D, K, S, G> {
        &self.ports
    }

    /// Enrolls a member: the email on file becomes their sign-in name, with an opaque
    /// username. Enrolling again keeps the first username. Returns the username.
    pub async fn provision(&self, email: &str, patient_id: &str) -> Result<String, PortError> {
        let key = normalize::email(email);
        let user = User {
            username: random_token().map_err(|e| PortError(e.to_string()))?,
            patient_id: patient_id.to_owned(),
        };
        let value = serde_json::to_value(&user).map_err(|e| PortError(e.to_string()))?;
        let kv = self.ports.kv.as_ref();
        kv.insert(USER_NAMESPACE, &key, &value, None)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok(self
            .lookup(&key)
            .await?
            .map_or(user.username, |u| u.username))
    }

    /// Enrolls each Patient that has an email on file (at `serve` start, the demo
    /// members). Returns how many were enrolled.
    pub async fn provision_patients(&self, patient_ids: &[String]) -> Result<usize, PortError> {
        let mut enrolled = 0;
        for patient_id in patient_ids {
            if let Some(email) = self
                .ports
                .members
                .facts(patient_id)
                .await?
                .and_then(|f| f.email)
            {
                self.provision(&email, patient_id).await?;
                enrolled += 1;
            }
        }
        Ok(enrolled)
    }

    async fn lookup(&self, key: &str) -> Result<Option<User>, PortError> {
        let entry = self
            .ports
            .kv
            .get(USER_NAMESPACE, key)
            .await
            .map_err(|e| PortError(e.to_string()))?;
        Ok(entry.and_then(|e| serde_json::from_value(e.value).ok()))
    }

    async fn subject(&self, email: &str) -> Result<Subject, SignInError> {
        let key = normalize::email(email);
        let user = if key.is_empty() {
            None
        } else {
            self.lookup(&key).await.map_err(provider)?
        };
        Ok(match user {
            Some(user) => Subject {
                attributes: json!({
                    "sub": user.username,
                    "email": key,
                    "email_verified": "true",
                    "cognito:user_status": "CONFIRMED",
                    PATIENT_ATTRIBUTE: user.patient_id,
                }),
                user_name: user.username,
                not_found: false,
                patient_id: Some(user.patient_id),
            },
            None => Subject {
                user_name: key,
                attributes: json!({}),
                not_found: true,
                patient_id: None,
            },
        })
    }

    /// One trigger invocation, shaped like Cognito's event. An error fails the sign-in.
    async fn invoke(
        &self,
        source: &str,
        subject: &Subject,
        client_id: &str,
        request: Value,
    ) -> Option<Value> {
        let event = json!({
            "version": "1",
            "region": "local",
            "userPoolId": "local",
            "userName": subject.user_name,
            "callerContext": { "awsSdkVersion": "local", "clientId": client_id },
            "triggerSource": source,
            "request": request,
            "response": {},
        });
        match handle_trigger(event, &self.ports).await {
            Ok(mut event) => Some(event["response"].take()),
            Err(error) => {
                tracing::info!(trigger = source, %error, "local sign-in: trigger refused");
                None
            }
        }
    }

    /// Define for the session so far, then whatever it decided.
    async fn define_and_continue(
        &self,
        subject: Subject,
        context: &SignInContext,
        history: Vec<Value>,
        metadata: Value,
    ) -> Result<Step, SignInError> {
        let request = json!({
            "userAttributes": subject.attributes,
            "session": history,
            "clientMetadata": metadata,
            "userNotFound": subject.not_found,
        });
        let Some(decision) = self
            .invoke(
                "DefineAuthChallenge_Authentication",
                &subject,
                &context.client_id,
                request,
            )
            .await
        else {
            return Ok(Step::Failed);
        };
        if decision["failAuthentication"].as_bool() != Some(false) {
            return Ok(Step::Failed);
        }
        if decision["issueTokens"].as_bool() == Some(true) {
            return Ok(self.generate_tokens(&subject, context, metadata).await);
        }
        if decision["challengeName"].as_str() != Some(CUSTOM_CHALLENGE) {
            return Ok(Step::Failed);
        }
        self.create(subject, context, history, metadata).await
    }

    async fn create(
        &self,
        subject: Subject,
        context: &SignInContext,
        history: Vec<Value>,
        metadata: Value,
    ) -> Result<Step, SignInError> {
        let request = json!({
            "userAttributes": subject.attributes,
            "challengeName": CUSTOM_CHALLENGE,
            "session": history,
            "clientMetadata": metadata,
            "userNotFound": subject.not_found,
        });
        let Some(created) = self
            .invoke(
                "CreateAuthChallenge_Authentication",
                &subject,
                &context.client_id,
                request,
            )
            .await
        else {
            return Ok(Step::Failed);
        };
        let public: HashMap<String, String> =
            serde_json::from_value(created["publicChallengeParameters"].clone())
                .unwrap_or_default();
        let Some(challenge) = Challenge::from_public_parameters(&public) else {
            return Ok(Step::Failed);
        };
        let session = random_token().map_err(|e| SignInError::Provider(e.to_string()))?;
        let pending = Pending {
            subject,
            client_id: context.client_id.clone(),
            history,
            private_parameters: created["privateChallengeParameters"].clone(),
            metadata: created["challengeMetadata"].clone(),
            expires: Instant::now() + self.session_ttl,
        };
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| SignInError::Provider("session table poisoned".into()))?;
        let now = Instant::now();
        sessions.retain(|_, p| p.expires > now);
        sessions.insert(session.clone(), pending);
        Ok(Step::Challenge {
            session: SignInSession(session),
            challenge,
        })
    }

    /// Pre Token Generation; its refusal (no active grant) is a failed sign-in.
    async fn generate_tokens(
        &self,
        subject: &Subject,
        context: &SignInContext,
        metadata: Value,
    ) -> Step {
        let request = json!({
            "userAttributes": subject.attributes,
            "groupConfiguration": { "groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": null },
            "scopes": [ADMIN_SCOPE],
            "clientMetadata": metadata,
        });
        let Some(response) = self
            .invoke(
                "TokenGeneration_Authentication",
                subject,
                &context.client_id,
                request,
            )
            .await
        else {
            return Step::Failed;
        };
        let claims = &response["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]["claimsToAddOrOverride"];
        match (
            claims["patient"].as_str(),
            claims["grant_id"].as_str(),
            &subject.patient_id,
        ) {
            (Some(patient), Some(grant_id), Some(own)) if patient == own => Step::SignedIn {
                subject: subject.user_name.clone(),
                patient: patient.to_owned(),
                grant_id: grant_id.to_owned(),
            },
            _ => Step::Failed,
        }
    }

    /// Removes the session whatever happens next: a session answers once.
    fn take_session(&self, session: &SignInSession) -> Result<Pending, SignInError> {
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| SignInError::Provider("session table poisoned".into()))?;
        match sessions.remove(&session.0) {
            Some(pending) if pending.expires > Instant::now() => Ok(pending),
            _ => Err(SignInError::SessionExpired),
        }
    }

    fn client_metadata(&self, context: &SignInContext) -> Value {
        let pairs = self
            .ports
            .config
            .secret
            .client_metadata(&context.client_id, &context.transaction_id);
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}

fn provider(error: PortError) -> SignInError {
    SignInError::Provider(error.0)
}

impl<D, K, S, G> SignIn for LocalSignIn<D, K, S, G>
where
    D: MemberDirectory,
    K: KeyValueStore,
    S: CodeSender,
    G: GrantGate,
{
    async fn start(&self, email: &str, context: &SignInContext) -> Result<Step, SignInError> {
        let subject = self.subject(email).await?;
        // Like Cognito with PreventUserExistenceErrors: Pre Authentication runs for
        // unknown users too (with userNotFound), and a refusal fails the sign-in.
        let request = json!({
            "userAttributes": subject.attributes,
            "validationData": {},
            "userNotFound": subject.not_found,
        });
        let allowed = self
            .invoke(
                "PreAuthentication_Authentication",
                &subject,
                &context.client_id,
                request,
            )
            .await;
        if allowed.is_none() {
            return Ok(Step::Failed);
        }
        self.define_and_continue(subject, context, Vec::new(), json!({}))
            .await
    }

    async fn answer(
        &self,
        session: &SignInSession,
        answer: &Answer,
        context: &SignInContext,
    ) -> Result<Step, SignInError> {
        let pending = self.take_session(session)?;
        if pending.client_id != context.client_id {
            return Ok(Step::Failed);
        }
        let metadata = self.client_metadata(context);
        let request = json!({
            "userAttributes": pending.subject.attributes,
            "privateChallengeParameters": pending.private_parameters,
            "challengeAnswer": answer.to_challenge_answer(),
            "clientMetadata": metadata,
            "userNotFound": pending.subject.not_found,
        });
        let verified = self
            .invoke(
                "VerifyAuthChallengeResponse_Authentication",
                &pending.subject,
                &context.client_id,
                request,
            )
            .await;
        let Some(correct) = verified.and_then(|v| v["answerCorrect"].as_bool()) else {
            return Ok(Step::Failed);
        };
        let mut history = pending.history;
        history.push(json!({ "challengeName": CUSTOM_CHALLENGE, "challengeResult": correct, "challengeMetadata": pending.metadata }));
        self.define_and_continue(pending.subject, context, history, metadata)
            .await
    }
}

/// Prints the one-time code to the console instead of emailing it (local mode only;
/// the real sender never logs a code).
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleCodeSender;

impl CodeSender for ConsoleCodeSender {
    async fn send(&self, email: &str, code: &str) -> Result<(), PortError> {
        println!(
            "one-time sign-in code for {}: {code}",
            normalize::mask_email(email)
        );
        Ok(())
    }
}
