//! What the triggers need from the outside world, as small traits.
//!
//! The trigger logic stays pure over the Cognito event JSON; every fact it reads and
//! every effect it has goes through one of these, so tests and the local stand-in swap
//! them freely. Attempt counters and one-time-code hashes use the store's
//! [`fhir_store::KeyValueStore`] directly (its conditional writes are the point).

use std::future::Future;
use std::sync::Arc;

use crate::secret::SignInSecret;

/// A dependency of the triggers failed. The text is for logs only (never PHI); Cognito
/// sees only the generic [`crate::triggers::TriggerError`] message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// The identity facts on file for one member, from the plan's Patient and Coverage.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct MemberFacts {
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Every member id the member may type: the Patient's and their active Coverage's.
    pub member_ids: Vec<String>,
    /// ZIP codes on the member's addresses, as on file (normalized when compared).
    pub postal_codes: Vec<String>,
    /// The email on file, where the one-time code goes.
    pub email: Option<String>,
}

impl std::fmt::Debug for MemberFacts {
    /// Never prints the facts: they are PHI.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemberFacts(..)")
    }
}

/// Reads a member's identity facts, keyed by the `custom:patient_id` user attribute.
pub trait MemberDirectory: Send + Sync {
    /// `Ok(None)` when there is no such Patient.
    fn facts(
        &self,
        patient_id: &str,
    ) -> impl Future<Output = Result<Option<MemberFacts>, PortError>> + Send;

    /// The latest `period.end` (`YYYY-MM-DD`) of the member's coverage; `None` while
    /// any Coverage is open-ended or none is known. The default knows none.
    fn coverage_end(
        &self,
        _patient_id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send {
        std::future::ready(Ok(None))
    }
}

/// Delivers a one-time code to the member's email (SES on AWS, the console locally).
pub trait CodeSender: Send + Sync {
    fn send(&self, email: &str, code: &str) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// What the consent page shows about the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDisplay {
    pub name: String,
    pub attested: bool,
    pub privacy_policy_url: Option<String>,
}

/// An active grant of (member, app), as Pre Token Generation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    pub grant_id: String,
    /// The approved SMART scopes, space separated.
    pub scope: String,
}

/// The authorization server's grants, as the triggers see them.
///
/// `client_id` is always the Cognito app client id from the event's
/// `callerContext.clientId`, which Cognito sets and the caller cannot choose; the
/// implementation maps it to the app in the registry.
pub trait GrantGate: Send + Sync {
    /// Flips the pending grant `grant_id` to active, only if it was recorded for this
    /// app, this patient and this authorization transaction. `Ok(false)` otherwise.
    fn activate(
        &self,
        grant_id: &str,
        client_id: &str,
        patient: &str,
        transaction_id: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// The active grant of this patient to this app, if any.
    fn active_grant(
        &self,
        client_id: &str,
        patient: &str,
    ) -> impl Future<Output = Result<Option<ActiveGrant>, PortError>> + Send;

    /// The app's name, attestation and privacy policy, for the consent challenge.
    fn app_display(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<AppDisplay>, PortError>> + Send;
}

impl<T: MemberDirectory + ?Sized> MemberDirectory for Arc<T> {
    fn facts(
        &self,
        patient_id: &str,
    ) -> impl Future<Output = Result<Option<MemberFacts>, PortError>> + Send {
        (**self).facts(patient_id)
    }

    fn coverage_end(
        &self,
        patient_id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send {
        (**self).coverage_end(patient_id)
    }
}

impl<T: CodeSender + ?Sized> CodeSender for Arc<T> {
    fn send(&self, email: &str, code: &str) -> impl Future<Output = Result<(), PortError>> + Send {
        (**self).send(email, code)
    }
}

impl<T: GrantGate + ?Sized> GrantGate for Arc<T> {
    fn activate(
        &self,
        grant_id: &str,
        client_id: &str,
        patient: &str,
        transaction_id: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send {
        (**self).activate(grant_id, client_id, patient, transaction_id)
    }

    fn active_grant(
        &self,
        client_id: &str,
        patient: &str,
    ) -> impl Future<Output = Result<Option<ActiveGrant>, PortError>> + Send {
        (**self).active_grant(client_id, patient)
    }

    fn app_display(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<AppDisplay>, PortError>> + Send {
        (**self).app_display(client_id)
    }
}

/// Limits and settings of the sign-in flow.
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    pub secret: SignInSecret,
    /// Failed answers (questions or code) per member, from all sources, before the
    /// member is locked (questions ungraded until the code; see `triggers::verify`).
    /// NIST SP 800-63B §5.2.2 allows at most 100 consecutive failures per account.
    pub max_failures: i64,
    /// The fixed window the member's failures are counted in, in seconds.
    pub failure_window_secs: i64,
    /// Digits in a one-time code, clamped to 6..=8.
    pub code_digits: u32,
    /// How long a one-time code lives, in seconds (at most 600).
    pub code_ttl_secs: i64,
    /// Tries per one-time code.
    pub code_tries: u32,
    /// Codes sent per member in one code window, so SES calls stay bounded.
    pub max_codes_sent: i64,
    /// The window codes are counted in, in seconds.
    pub code_window_secs: i64,
    /// The FHIR base URL, for the `fhirUser` claim (`{base}/Patient/{id}`).
    pub fhir_base_url: Option<String>,
    /// Days after the end of their coverage that former members may still sign in;
    /// `None`: always (template parameter `MemberAccessWindowDays`).
    pub access_window_days: Option<u32>,
}

impl TriggerConfig {
    /// The policy (SECURITY.md, finding 3): 100 failures in a day lock the member (the
    /// questions go ungraded until the code is proven, nobody is shut out); 6-digit
    /// codes live 10 minutes and allow 3 tries; 3 codes per member per 15 minutes.
    pub fn new(secret: SignInSecret) -> Self {
        TriggerConfig {
            secret,
            max_failures: 100,
            failure_window_secs: 24 * 3600,
            code_digits: 6,
            code_ttl_secs: 10 * 60,
            code_tries: 3,
            max_codes_sent: 3,
            code_window_secs: 15 * 60,
            fhir_base_url: None,
            access_window_days: None,
        }
    }
}

/// Everything the triggers use: the facts, the key-value store for counters and codes,
/// the code sender, the grant gate and the settings.
pub struct TriggerPorts<D, K, S, G> {
    pub members: Arc<D>,
    pub kv: Arc<K>,
    pub sender: Arc<S>,
    pub grants: Arc<G>,
    pub config: TriggerConfig,
}

impl<D, K, S, G> Clone for TriggerPorts<D, K, S, G> {
    fn clone(&self) -> Self {
        TriggerPorts {
            members: Arc::clone(&self.members),
            kv: Arc::clone(&self.kv),
            sender: Arc::clone(&self.sender),
            grants: Arc::clone(&self.grants),
            config: self.config.clone(),
        }
    }
}

/// The app registry, as far as the triggers need it.
pub trait AppCatalog: Send + Sync {
    /// Our SMART client id for the identity provider's app client id (the event's
    /// `callerContext.clientId`). `Ok(None)`: no registered app uses that client.
    ///
    /// The default is the identity, which is right wherever the provider is given our
    /// own ids (the local stand-in and tests); on Cognito the registry maps them.
    fn app_id(
        &self,
        provider_client_id: &str,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send {
        let id = (!provider_client_id.is_empty()).then(|| provider_client_id.to_owned());
        std::future::ready(Ok(id))
    }

    /// What the consent page shows about the app with our SMART client id `app_id`.
    fn app_display(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<AppDisplay>, PortError>> + Send;
}
