//! `/authorize` and the sign-in pages (member-auth.md §1.2 steps 2–8).
//!
//! The request is checked in the order the spec asks: client and redirect URI first
//! (failures get an HTML page and never a redirect, so we cannot be used as an open
//! redirector), then everything else (failures go back to the app as `error=…&state=…`).
//! A transaction record then carries the request through the pages; the browser holds
//! only its random id in an HttpOnly cookie, and each form carries a CSRF token tied to
//! it. The identity provider's session stays in the record, never in the browser.

use bytes::Bytes;
use fhir::ResourceType;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{HeaderValue, Request, Response, StatusCode};
use member_consent::grants::{self, NewGrant};
use member_signin::{Answer, Challenge, SignIn, SignInContext, SignInSession, Step};
use serde::{Deserialize, Serialize};
use smart_auth::{Interaction, ScopeSet};

use crate::apps::{self, App, PORTAL_CLIENT_ID, PORTAL_SCOPE};
use secrets::constant_time_eq;

use crate::crypto::{hash_secret, is_pkce_string, random_secret};
use crate::pages::{self, Category, CodePage, ConsentPage, EmailPage, IdentityPage, page};
use crate::respond::{Params, cookie, redirect, with_query};
use crate::{AuthServer, ServerError, secs, throttle, unix_now};

pub(crate) const TXN_NAMESPACE: &str = "auth-txn";
pub(crate) const CODE_NAMESPACE: &str = "auth-code";
pub(crate) const TXN_COOKIE: &str = "pa_txn";

/// The one message every sign-in failure shows: it never says which answer was wrong,
/// whether the email exists, or whether the member is locked out.
pub(crate) const SIGN_IN_FAILED: &str =
    "We could not confirm your identity with those details. Check them and try again.";

/// What a member who proved who they are, but already had the most one-time codes a
/// window allows, is told instead of [`SIGN_IN_FAILED`]: the truth, and when to come
/// back. Only someone who answered the member's own questions right gets here.
pub(crate) fn too_many_codes(retry_at: i64, now: i64) -> String {
    let minutes = ((retry_at - now).max(1) + 59) / 60;
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "Too many sign-in codes were sent to your email recently. For your security no new \
         code was sent. Try again in {minutes} {unit}."
    )
}

/// Why a transaction exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Purpose {
    /// A SMART launch: ends with a code sent to the app.
    App,
    /// The member's connected-apps page: ends with a member session.
    Portal,
}

/// Which form the transaction expects next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Stage {
    Email,
    Identity,
    Code { masked_email: String },
    Consent,
}

/// One authorization request in progress (KV `auth-txn`, keyed by the hash of the
/// cookie value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Transaction {
    pub id: String,
    pub purpose: Purpose,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    /// requested ∩ registered, wildcards narrowed to concrete types.
    pub scope: String,
    pub csrf: String,
    pub stage: Stage,
    pub session: Option<SignInSession>,
    pub expires_at: i64,
}

/// What a code stands for (KV `auth-code`, keyed by the hash of the code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub grant_id: String,
    pub patient: String,
    pub subject: String,
    pub scope: String,
}

/// A loaded transaction with the version it was read at.
struct Loaded {
    key: String,
    version: u64,
    txn: Transaction,
}

type Page = Response<Bytes>;

impl<S, L> AuthServer<S, L>
where
    S: ResourceStore + KeyValueStore + 'static,
    L: SignIn + 'static,
{
    /// `GET|POST /authorize`.
    pub(crate) async fn authorize(&self, request: &Request<Bytes>) -> Page {
        let params = Params::of_request(request);
        let app = match self.check_client(&params).await {
            Ok(app) => app,
            Err(page) => return page,
        };
        let redirect_uri = params.one("redirect_uri").unwrap_or_default().to_owned();
        let state = params.one("state").unwrap_or_default().to_owned();
        let back = |error: &str, description: &str| {
            tracing::info!(target: "audit", client_id = %app.client_id, error, event = "authorize.refused", "authorization request refused");
            let mut pairs = vec![("error", error), ("error_description", description)];
            if !state.is_empty() {
                pairs.push(("state", state.as_str()));
            }
            redirect(&with_query(&redirect_uri, &pairs), false)
        };
        if state.is_empty() || state.len() > 1024 {
            return back("invalid_request", "state is required");
        }
        match params.one("response_type") {
            Some("code") => {}
            Some(_) => return back("unsupported_response_type", "only response_type=code"),
            None => return back("invalid_request", "response_type is required"),
        }
        let challenge = params.one("code_challenge").unwrap_or_default();
        if params.one("code_challenge_method") != Some("S256") || !is_pkce_string(challenge) {
            return back(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            );
        }
        let aud = params.one("aud").or_else(|| params.one("resource"));
        if aud.map(|a| a.trim_end_matches('/')) != Some(self.config.issuer.as_str()) {
            return back("invalid_request", "aud must be this server's FHIR base URL");
        }
        let requested = ScopeSet::parse(params.one("scope").unwrap_or_default());
        let scope = requested
            .intersection(&app.allowed_scopes())
            .without_wildcard();
        if !scope.has_resource_scopes() {
            return back(
                "invalid_scope",
                "no requested scope can be granted to this app",
            );
        }
        let txn = match self.new_transaction(
            Purpose::App,
            &app,
            &redirect_uri,
            &state,
            challenge,
            &scope,
        ) {
            Ok(txn) => txn,
            Err(error) => return self.fault(error),
        };
        tracing::info!(target: "audit", client_id = %app.client_id, event = "authorize.started", "authorization started");
        self.begin(txn, &app.name).await
    }

    /// Unknown or disabled client, or a redirect URI that is not registered byte for
    /// byte: an error page, never a redirect.
    async fn check_client(&self, params: &Params) -> Result<App, Page> {
        let refuse = || {
            pages::error_page(
                StatusCode::BAD_REQUEST,
                "This app cannot connect",
                "The app's request is not valid: it is not registered with your health plan, or it sent you to an address it did not register. Nothing was shared.",
            )
        };
        let client_id = params.one("client_id").ok_or_else(refuse)?;
        let app = match apps::enabled(self.store.as_ref(), client_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return Err(refuse()),
            Err(error) => return Err(self.fault(error)),
        };
        let redirect_uri = params.one("redirect_uri").ok_or_else(refuse)?;
        if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(refuse());
        }
        Ok(app)
    }

    pub(crate) fn new_transaction(
        &self,
        purpose: Purpose,
        app: &App,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
        scope: &ScopeSet,
    ) -> Result<Transaction, ServerError> {
        Ok(Transaction {
            id: random_secret()?,
            purpose,
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            code_challenge: challenge.to_owned(),
            scope: scope.to_scope_string(),
            csrf: random_secret()?,
            stage: Stage::Email,
            session: None,
            expires_at: unix_now().saturating_add(secs(self.config.transaction_lifetime)),
        })
    }

    /// Stores a new transaction, sets its cookie and shows the email page.
    pub(crate) async fn begin(&self, txn: Transaction, app_name: &str) -> Page {
        let key = hash_secret(&txn.id);
        let stored = match serde_json::to_value(&txn) {
            Ok(value) => KeyValueStore::insert(
                self.store.as_ref(),
                TXN_NAMESPACE,
                &key,
                &value,
                Some(txn.expires_at),
            )
            .await
            .map_err(ServerError::from),
            Err(e) => Err(ServerError::Internal(e.to_string())),
        };
        match stored {
            Ok(true) => {}
            Ok(false) => {
                return self.fault(ServerError::Internal("transaction id collision".into()));
            }
            Err(error) => return self.fault(error),
        }
        let mut response = page(
            StatusCode::OK,
            &EmailPage {
                app_name,
                csrf: &txn.csrf,
                error: None,
            },
        );
        self.set_cookie(
            &mut response,
            TXN_COOKIE,
            &txn.id,
            secs(self.config.transaction_lifetime),
        );
        response
    }

    /// `POST /authorize/email`.
    pub(crate) async fn email_step(&self, request: &Request<Bytes>) -> Page {
        let (loaded, form) = match self.load_for(request, |s| *s == Stage::Email).await {
            Ok(found) => found,
            Err(page) => return page,
        };
        let email = form.one("email").unwrap_or_default().trim().to_owned();
        if email.is_empty() || email.len() > 254 {
            return self.show_email_again(loaded, SIGN_IN_FAILED).await;
        }
        let context = self.context(&loaded.txn);
        let step = self.sign_in.start(&email, &context).await;
        self.advance(loaded, step).await
    }

    /// `POST /authorize/identity`.
    pub(crate) async fn identity_step(&self, request: &Request<Bytes>) -> Page {
        let (loaded, form) = match self.load_for(request, |s| *s == Stage::Identity).await {
            Ok(found) => found,
            Err(page) => return page,
        };
        let field = |name: &str| {
            form.one(name)
                .unwrap_or_default()
                .trim()
                .chars()
                .take(64)
                .collect::<String>()
        };
        let answer = Answer::Demographics {
            birth_date: field("birth_date"),
            member_id: field("member_id"),
            postal_code: field("postal_code"),
        };
        let address = request.extensions().get::<crate::ClientAddress>();
        self.answer(loaded, &answer, address).await
    }

    /// `POST /authorize/code`.
    pub(crate) async fn code_step(&self, request: &Request<Bytes>) -> Page {
        let (loaded, form) = match self
            .load_for(request, |s| matches!(s, Stage::Code { .. }))
            .await
        {
            Ok(found) => found,
            Err(page) => return page,
        };
        let code: String = form
            .one("code")
            .unwrap_or_default()
            .trim()
            .chars()
            .take(12)
            .collect();
        let address = request.extensions().get::<crate::ClientAddress>();
        self.answer(loaded, &Answer::EmailCode(code), address).await
    }

    /// `POST /authorize/consent`: approve (some or all) or deny.
    pub(crate) async fn consent_step(&self, request: &Request<Bytes>) -> Page {
        let (loaded, form) = match self.load_for(request, |s| *s == Stage::Consent).await {
            Ok(found) => found,
            Err(page) => return page,
        };
        if loaded.txn.purpose != Purpose::App {
            return self.expired_page();
        }
        let app = match apps::enabled(self.store.as_ref(), &loaded.txn.client_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return self.expired_page(),
            Err(error) => return self.fault(error),
        };
        let offered = ScopeSet::parse(&loaded.txn.scope);
        let approved = match form.one("decision") {
            Some("approve") => approved_scopes(&offered, form.all("type")),
            _ => None,
        };
        match approved {
            Some(scope) => self.grant(loaded, &app, &scope).await,
            None => self.deny(loaded, &app, &offered).await,
        }
    }

    /// Records the pending grant and answers the consent challenge with it.
    async fn grant(&self, loaded: Loaded, app: &App, scope: &ScopeSet) -> Page {
        let new = self.new_grant(&loaded.txn, &app.name, app.attested, scope);
        let grant = match grants::create_pending(self.store.as_ref(), &new).await {
            Ok(grant) => grant,
            Err(error) => return self.fault(error.into()),
        };
        if let Err(error) = apps::index_grant(
            self.store.as_ref(),
            &app.client_id,
            &grant.id,
            grant.expires_at,
        )
        .await
        {
            return self.fault(error.into());
        }
        self.answer(loaded, &Answer::Consent { grant_id: grant.id }, None)
            .await
    }

    async fn deny(&self, loaded: Loaded, app: &App, offered: &ScopeSet) -> Page {
        let new = self.new_grant(&loaded.txn, &app.name, app.attested, offered);
        if let Err(error) = grants::record_rejected(self.store.as_ref(), &new).await {
            return self.fault(error.into());
        }
        self.end(&loaded).await;
        let txn = &loaded.txn;
        let location = with_query(
            &txn.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the member denied the request"),
                ("state", &txn.state),
            ],
        );
        self.clear_cookie(redirect(&location, true), TXN_COOKIE)
    }

    fn new_grant(
        &self,
        txn: &Transaction,
        app_name: &str,
        attested: bool,
        scope: &ScopeSet,
    ) -> NewGrant {
        let mut types = scope.allowed_types(Interaction::Read);
        for t in scope.allowed_types(Interaction::Search) {
            if !types.contains(&t) {
                types.push(t);
            }
        }
        NewGrant {
            patient: None,
            client_id: txn.client_id.clone(),
            app_name: app_name.to_owned(),
            app_attested: attested,
            scope: scope.to_scope_string(),
            data_types: types,
            transaction_id: Some(hash_secret(&txn.id)),
            lifetime: self.config.grant_lifetime,
        }
    }

    /// Sends one answer to the identity provider and moves the transaction on. Answers
    /// to the questions and the code are throttled per source (the transaction and
    /// `address`): while a source must wait, its answer is refused ungraded.
    async fn answer(
        &self,
        loaded: Loaded,
        answer: &Answer,
        address: Option<&crate::ClientAddress>,
    ) -> Page {
        let Some(session) = loaded.txn.session.clone() else {
            return self.expired_page();
        };
        let guessable = matches!(loaded.txn.stage, Stage::Identity | Stage::Code { .. });
        let sources = throttle::sources(address, &loaded.key);
        let now = unix_now();
        if guessable {
            let store = self.store.as_ref();
            if let Some(until) =
                throttle::wait_until(store, &self.config.signin_throttle, &sources, now).await
            {
                tracing::info!(target: "audit", client_id = %loaded.txn.client_id, event = "signin.throttled", "answer refused ungraded: its source must wait");
                return self
                    .show_email_again(loaded, &throttle::wait_message(until, now))
                    .await;
            }
        }
        let context = self.context(&loaded.txn);
        let step = self.sign_in.answer(&session, answer, &context).await;
        // A wrong code comes back as the code challenge again; a wrong answer to the
        // questions, or the last wrong code, as a failure.
        let failed = match &step {
            Ok(Step::Failed) => true,
            Ok(Step::Challenge { challenge, .. }) => {
                matches!(loaded.txn.stage, Stage::Code { .. })
                    && matches!(challenge, Challenge::EmailCode { .. })
            }
            _ => false,
        };
        if guessable && failed {
            throttle::failed(
                self.store.as_ref(),
                &self.config.signin_throttle,
                &sources,
                now,
            )
            .await;
        }
        self.advance(loaded, step).await
    }

    /// Acts on what the identity provider said: the next page, a generic failure, or
    /// (after consent) the code.
    async fn advance(
        &self,
        mut loaded: Loaded,
        step: Result<Step, member_signin::SignInError>,
    ) -> Page {
        let step = match step {
            Ok(step) => step,
            Err(error) => {
                tracing::warn!(target: "audit", client_id = %loaded.txn.client_id, error = %error, event = "signin.error", "sign-in provider error");
                return self.show_email_again(loaded, SIGN_IN_FAILED).await;
            }
        };
        let (session, challenge) = match step {
            Step::Challenge { session, challenge } => (session, challenge),
            Step::SignedIn {
                subject,
                patient,
                grant_id,
            } => {
                return self.signed_in(loaded, &subject, &patient, &grant_id).await;
            }
            Step::Failed => {
                tracing::info!(target: "audit", client_id = %loaded.txn.client_id, event = "signin.failed", "sign-in challenge failed");
                return self.show_email_again(loaded, SIGN_IN_FAILED).await;
            }
        };
        let next = match (&loaded.txn.stage, challenge) {
            (Stage::Email, Challenge::Demographics) => Stage::Identity,
            (Stage::Identity, Challenge::EmailCode { masked_email }) => {
                Stage::Code { masked_email }
            }
            (Stage::Code { .. }, Challenge::Consent) => Stage::Consent,
            (Stage::Identity, Challenge::TooManyCodes { retry_at }) => {
                tracing::info!(target: "audit", client_id = %loaded.txn.client_id, event = "signin.code_limit", "no code sent: too many codes in the window");
                let message = too_many_codes(retry_at, unix_now());
                return self.show_email_again(loaded, &message).await;
            }
            _ => {
                tracing::warn!(target: "audit", client_id = %loaded.txn.client_id, event = "signin.out_of_order", "unexpected challenge");
                return self.show_email_again(loaded, SIGN_IN_FAILED).await;
            }
        };
        loaded.txn.session = Some(session);
        loaded.txn.stage = next;
        if !self.save(&mut loaded).await {
            return self.expired_page();
        }
        self.render_stage(loaded).await
    }

    async fn render_stage(&self, loaded: Loaded) -> Page {
        let txn = &loaded.txn;
        match (&txn.stage, txn.purpose) {
            (Stage::Email, _) => page(
                StatusCode::OK,
                &EmailPage {
                    app_name: "",
                    csrf: &txn.csrf,
                    error: None,
                },
            ),
            (Stage::Identity, _) => page(StatusCode::OK, &IdentityPage { csrf: &txn.csrf }),
            (Stage::Code { masked_email }, _) => page(
                StatusCode::OK,
                &CodePage {
                    csrf: &txn.csrf,
                    masked_email,
                },
            ),
            (Stage::Consent, Purpose::Portal) => self.portal_consent(loaded).await,
            (Stage::Consent, Purpose::App) => {
                match apps::enabled(self.store.as_ref(), &txn.client_id).await {
                    Ok(Some(app)) => consent_page(txn, &app),
                    Ok(None) => self.expired_page(),
                    Err(error) => self.fault(error),
                }
            }
        }
    }

    /// The member managing their apps consents to nothing new: the portal's own grant
    /// (read their Consents) is made and answered without a page.
    async fn portal_consent(&self, loaded: Loaded) -> Page {
        let new = NewGrant {
            patient: None,
            client_id: PORTAL_CLIENT_ID.to_owned(),
            app_name: "Your connected apps page".to_owned(),
            app_attested: true,
            scope: PORTAL_SCOPE.to_owned(),
            data_types: vec![ResourceType::Consent],
            transaction_id: Some(hash_secret(&loaded.txn.id)),
            lifetime: self.config.member_session_lifetime,
        };
        match grants::create_pending(self.store.as_ref(), &new).await {
            Ok(grant) => {
                Box::pin(self.answer(loaded, &Answer::Consent { grant_id: grant.id }, None)).await
            }
            Err(error) => self.fault(error.into()),
        }
    }

    /// All three challenges passed: check the grant, then hand out a code (or, for the
    /// portal, a member session).
    async fn signed_in(
        &self,
        loaded: Loaded,
        subject: &str,
        patient: &str,
        grant_id: &str,
    ) -> Page {
        let txn = &loaded.txn;
        let grant = match grants::active_for(self.store.as_ref(), grant_id, &txn.client_id, patient)
            .await
        {
            Ok(grant) if grant.transaction_id.as_deref() == Some(hash_secret(&txn.id).as_str()) => {
                grant
            }
            Ok(_)
            | Err(
                member_consent::GrantError::NotFound
                | member_consent::GrantError::WrongOwner
                | member_consent::GrantError::WrongStatus(_)
                | member_consent::GrantError::Expired,
            ) => {
                tracing::warn!(target: "audit", client_id = %txn.client_id, event = "signin.grant_mismatch", "sign-in ended without a matching active grant");
                return self.show_email_again(loaded, SIGN_IN_FAILED).await;
            }
            Err(error) => return self.fault(error.into()),
        };
        self.end(&loaded).await;
        if txn.purpose == Purpose::Portal {
            return self.start_member_session(patient, &grant.id).await;
        }
        match self
            .issue_code(txn, &grant.id, patient, subject, &grant.scope)
            .await
        {
            Ok(code) => {
                tracing::info!(target: "audit", client_id = %txn.client_id, grant_id = %grant.id, event = "authorize.code_issued", "authorization code issued");
                let location =
                    with_query(&txn.redirect_uri, &[("code", &code), ("state", &txn.state)]);
                self.clear_cookie(redirect(&location, true), TXN_COOKIE)
            }
            Err(error) => self.fault(error),
        }
    }

    async fn issue_code(
        &self,
        txn: &Transaction,
        grant_id: &str,
        patient: &str,
        subject: &str,
        scope: &str,
    ) -> Result<String, ServerError> {
        let code = random_secret()?;
        let record = CodeRecord {
            client_id: txn.client_id.clone(),
            redirect_uri: txn.redirect_uri.clone(),
            code_challenge: txn.code_challenge.clone(),
            grant_id: grant_id.to_owned(),
            patient: patient.to_owned(),
            subject: subject.to_owned(),
            scope: scope.to_owned(),
        };
        let value =
            serde_json::to_value(&record).map_err(|e| ServerError::Internal(e.to_string()))?;
        let expires = unix_now().saturating_add(secs(self.config.code_lifetime));
        KeyValueStore::put(
            self.store.as_ref(),
            CODE_NAMESPACE,
            &hash_secret(&code),
            &value,
            Some(expires),
        )
        .await?;
        Ok(code)
    }

    /// A failed challenge: back to the email page of the same transaction, with the one
    /// generic message and a new CSRF token. The identity provider's counters (across
    /// sessions) stop brute force; restarting does not reset them.
    async fn show_email_again(&self, mut loaded: Loaded, message: &str) -> Page {
        loaded.txn.stage = Stage::Email;
        loaded.txn.session = None;
        loaded.txn.csrf = match random_secret() {
            Ok(csrf) => csrf,
            Err(error) => return self.fault(error),
        };
        if !self.save(&mut loaded).await {
            return self.expired_page();
        }
        let name = match loaded.txn.purpose {
            Purpose::Portal => "your connected apps page".to_owned(),
            Purpose::App => apps::get(self.store.as_ref(), &loaded.txn.client_id)
                .await
                .ok()
                .flatten()
                .map(|a| a.name)
                .unwrap_or_default(),
        };
        page(
            StatusCode::OK,
            &EmailPage {
                app_name: &name,
                csrf: &loaded.txn.csrf,
                error: Some(message),
            },
        )
    }

    /// Loads the cookie's transaction, checks the form's CSRF token and the stage.
    async fn load_for(
        &self,
        request: &Request<Bytes>,
        expected: impl Fn(&Stage) -> bool,
    ) -> Result<(Loaded, Params), Page> {
        let form = Params::of_request(request);
        let Some(id) = cookie(request.headers(), TXN_COOKIE) else {
            return Err(self.expired_page());
        };
        let key = hash_secret(id);
        let entry = match KeyValueStore::get(self.store.as_ref(), TXN_NAMESPACE, &key).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err(self.expired_page()),
            Err(error) => return Err(self.fault(error.into())),
        };
        let Ok(txn) = serde_json::from_value::<Transaction>(entry.value) else {
            return Err(self.expired_page());
        };
        let csrf = form.one("csrf").unwrap_or_default();
        if !constant_time_eq(csrf, &txn.csrf) {
            tracing::warn!(target: "audit", client_id = %txn.client_id, event = "authorize.csrf_mismatch", "form without a valid CSRF token");
            return Err(pages::error_page(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your safety we could not accept this form. Start again from the app.",
            ));
        }
        if !expected(&txn.stage) {
            return Err(self.expired_page());
        }
        Ok((
            Loaded {
                key,
                version: entry.version,
                txn,
            },
            form,
        ))
    }

    /// Writes the transaction back if nobody else did meanwhile (a replayed or
    /// concurrent form submission loses).
    async fn save(&self, loaded: &mut Loaded) -> bool {
        let Ok(value) = serde_json::to_value(&loaded.txn) else {
            return false;
        };
        match KeyValueStore::replace(
            self.store.as_ref(),
            TXN_NAMESPACE,
            &loaded.key,
            loaded.version,
            &value,
            Some(loaded.txn.expires_at),
        )
        .await
        {
            Ok(true) => {
                loaded.version += 1;
                true
            }
            Ok(false) => false,
            Err(error) => {
                tracing::error!(error = %error, "transaction write failed");
                false
            }
        }
    }

    async fn end(&self, loaded: &Loaded) {
        if let Err(error) =
            KeyValueStore::delete(self.store.as_ref(), TXN_NAMESPACE, &loaded.key).await
        {
            tracing::error!(error = %error, "transaction delete failed");
        }
    }

    fn context(&self, txn: &Transaction) -> SignInContext {
        SignInContext {
            client_id: txn.client_id.clone(),
            transaction_id: hash_secret(&txn.id),
        }
    }

    pub(crate) fn expired_page(&self) -> Page {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "Your sign-in has expired",
            "This sign-in is no longer valid. Start again from the app.",
        )
    }

    pub(crate) fn fault(&self, error: ServerError) -> Page {
        tracing::error!(error = %error, "authorization server fault");
        pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "We could not complete this step. Nothing was shared. Please try again later.",
        )
    }

    pub(crate) fn set_cookie(&self, response: &mut Page, name: &str, value: &str, max_age: i64) {
        let secure = if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let cookie =
            format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value);
        }
    }

    pub(crate) fn clear_cookie(&self, mut response: Page, name: &str) -> Page {
        self.set_cookie(&mut response, name, "", 0);
        response
    }
}

/// The consent page for an app transaction.
fn consent_page(txn: &Transaction, app: &App) -> Page {
    let offered = ScopeSet::parse(&txn.scope);
    let categories = data_types(&offered)
        .into_iter()
        .map(|t| Category {
            code: t.as_str(),
            label: pages::category_label(t),
        })
        .collect();
    let mut response = page(
        StatusCode::OK,
        &ConsentPage {
            app_name: &app.name,
            attested: app.attested,
            privacy_policy: app.privacy_policy.as_deref(),
            csrf: &txn.csrf,
            categories,
            offline: offered.offline_access(),
        },
    );
    // Allow and Don't allow both answer with a redirect to the app.
    crate::respond::allow_form_redirect_to(&mut response, &txn.redirect_uri);
    response
}

/// The resource types a scope set reads or searches, in [`ResourceType::ALL`] order.
fn data_types(scopes: &ScopeSet) -> Vec<ResourceType> {
    ResourceType::ALL
        .into_iter()
        .filter(|t| scopes.allows(*t, Interaction::Read) || scopes.allows(*t, Interaction::Search))
        .collect()
}

/// offered ∩ (context scopes + the ticked types); `None` when no data type is ticked
/// (approving nothing is a denial).
fn approved_scopes<'a>(
    offered: &ScopeSet,
    ticked: impl Iterator<Item = &'a str>,
) -> Option<ScopeSet> {
    let mut parts: Vec<String> = [
        "launch/patient",
        "openid",
        "fhirUser",
        "offline_access",
        "online_access",
        "profile",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for name in ticked {
        if let Ok(t) = name.parse::<ResourceType>() {
            parts.push(format!("patient/{t}.rs"));
        }
    }
    let approved = offered.intersection(&ScopeSet::parse(&parts.join(" ")));
    approved.has_resource_scopes().then_some(approved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_limit_message_says_when_to_come_back() {
        let message = too_many_codes(1_000 + 14 * 60 + 5, 1_000);
        assert!(message.contains("Too many sign-in codes"), "{message}");
        assert!(message.contains("in 15 minutes"), "{message}");
        assert!(too_many_codes(1_000, 1_000).contains("in 1 minute."));
    }

    #[test]
    fn granted_is_offered_intersected_with_ticked() {
        let offered = ScopeSet::parse(
            "launch/patient openid patient/ExplanationOfBenefit.rs patient/Patient.r",
        );
        let approved =
            approved_scopes(&offered, ["Patient", "Coverage", "Bogus"].into_iter()).unwrap();
        assert_eq!(
            approved.to_scope_string(),
            "launch/patient openid patient/Patient.r"
        );
        assert!(approved_scopes(&offered, std::iter::empty()).is_none());
    }
}
