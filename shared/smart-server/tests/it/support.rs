//! A test harness: the authorization server over a temporary redb store, a local
//! signing key, a FHIR ExplanationOfBenefit handler sharing the store, and a test
//! double of the sign-in port (the real stand-in lives in `member-signin`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use fhir::ResourceType;
use fhir_api::{ApiConfig, ResourceApi};
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use http::{Request, Response};
use member_consent::grants;
use member_signin::{Answer, Challenge, SignIn, SignInContext, SignInError, SignInSession, Step};
use serde_json::{Value, json};
use smart_auth::{CursorSealer, LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig};
use smart_server::{AuthConfig, AuthServer, NewApp, apps};
use store_redb::RedbStore;

pub const BASE: &str = "http://localhost:9999";
pub const EMAIL: &str = "pat@example.org";
pub const PATIENT: &str = "p1";
pub const OTHER_PATIENT: &str = "q1";
pub const CODE: &str = "246810";
pub const REDIRECT: &str = "https://app.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The sign-in port's test double: one member, fixed answers, single-use sessions.
pub struct FakeSignIn {
    store: Arc<RedbStore>,
    sessions: Mutex<HashMap<String, (u8, bool)>>,
    next: Mutex<u64>,
}

impl FakeSignIn {
    fn session(&self, stage: u8, known: bool) -> SignInSession {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let id = format!("s{next}");
        self.sessions
            .lock()
            .unwrap()
            .insert(id.clone(), (stage, known));
        SignInSession(id)
    }
}

impl SignIn for FakeSignIn {
    async fn start(&self, email: &str, _context: &SignInContext) -> Result<Step, SignInError> {
        // Unknown emails start too, and fail only later (no enumeration).
        let known = email == EMAIL;
        Ok(Step::Challenge {
            session: self.session(1, known),
            challenge: Challenge::Demographics,
        })
    }

    async fn answer(
        &self,
        session: &SignInSession,
        answer: &Answer,
        context: &SignInContext,
    ) -> Result<Step, SignInError> {
        let Some((stage, known)) = self.sessions.lock().unwrap().remove(&session.0) else {
            return Err(SignInError::SessionExpired);
        };
        match (stage, answer) {
            (
                1,
                Answer::Demographics {
                    birth_date,
                    member_id,
                    postal_code,
                },
            ) => {
                if known
                    && birth_date == "1980-01-01"
                    && member_id == "M1"
                    && postal_code == "12345"
                {
                    let masked_email = "p***@example.org".to_owned();
                    Ok(Step::Challenge {
                        session: self.session(2, known),
                        challenge: Challenge::EmailCode { masked_email },
                    })
                } else {
                    Ok(Step::Failed)
                }
            }
            (2, Answer::EmailCode(code)) if code == CODE => Ok(Step::Challenge {
                session: self.session(3, known),
                challenge: Challenge::Consent,
            }),
            (3, Answer::Consent { grant_id }) => {
                match grants::activate(self.store.as_ref(), grant_id, &context.client_id, PATIENT)
                    .await
                {
                    Ok(_) => Ok(Step::SignedIn {
                        subject: "sub-p1".into(),
                        patient: PATIENT.into(),
                        grant_id: grant_id.clone(),
                    }),
                    Err(_) => Ok(Step::Failed),
                }
            }
            _ => Ok(Step::Failed),
        }
    }
}

pub struct Harness {
    pub server: AuthServer<RedbStore, FakeSignIn>,
    pub store: Arc<RedbStore>,
    pub issuer: Arc<LocalIssuer>,
    pub eob: ResourceApi<RedbStore>,
    pub app: smart_server::App,
    _dir: tempfile::TempDir,
}

pub async fn harness() -> Harness {
    harness_with(Duration::from_secs(60)).await
}

/// `grant_cache_ttl`: how long the FHIR handler reuses a grant answer.
pub async fn harness_with(grant_cache_ttl: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("t.redb")).unwrap());
    let issuer =
        Arc::new(LocalIssuer::load_or_create(dir.path(), BASE.into(), BASE.into()).unwrap());
    let sign_in = Arc::new(FakeSignIn {
        store: Arc::clone(&store),
        sessions: Mutex::default(),
        next: Mutex::default(),
    });
    let server = AuthServer::new(
        Arc::clone(&store),
        sign_in,
        issuer.clone(),
        issuer.jwks(),
        AuthConfig::new(BASE),
    );
    server.init().await.unwrap();
    let app = register(&store, "Health App", false).await.app;
    for (id, patient) in [("eob-p1", PATIENT), ("eob-q1", OTHER_PATIENT)] {
        let resource = json!({"resourceType": "ExplanationOfBenefit", "id": id, "status": "active", "patient": {"reference": format!("Patient/{patient}")}});
        let write = ResourceWrite::indexed(
            ResourceType::ExplanationOfBenefit,
            id,
            resource,
            WriteCondition::Absent,
        );
        store.put(write).await.unwrap();
    }
    let mut config = ApiConfig::new(BASE);
    config.grant_cache_ttl = grant_cache_ttl;
    let verifier = TokenVerifier::new(VerifierConfig::new(
        BASE.into(),
        BASE.into(),
        Arc::new(StaticJwks::new(issuer.jwks())),
    ));
    let eob = ResourceApi::new(
        ResourceType::ExplanationOfBenefit,
        Arc::clone(&store),
        Arc::new(verifier),
        Arc::new(CursorSealer::new([7; 32])),
        Arc::new(config),
    );
    Harness {
        server,
        store,
        issuer,
        eob,
        app,
        _dir: dir,
    }
}

pub async fn register(
    store: &RedbStore,
    name: &str,
    confidential: bool,
) -> smart_server::Registered {
    let new = NewApp {
        name: name.into(),
        description: String::new(),
        redirect_uris: vec![REDIRECT.into()],
        confidential,
        privacy_policy: Some("https://app.example/privacy".into()),
        attested: true,
    };
    apps::register(store, &new).await.unwrap()
}

/// What a response looked like, with the bits tests read.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    /// `name` from the redirect's query.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let location = self.location()?;
        let query = location.split_once('?')?.1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    pub fn csrf(&self) -> Option<String> {
        let at = self.text.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        Some(self.text[at..].split('"').next()?.to_owned())
    }
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let (k, rest) = c.split_once('=')?;
                (k == name).then(|| rest.split(';').next().unwrap_or_default().to_owned())
            })
    }
}

fn into_reply(response: Response<Bytes>) -> Reply {
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The standard authorize parameters for `client_id`, overridable.
pub fn authorize_params<'a>(client_id: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st+/=&%ate"),
        ("aud", BASE),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

pub const FULL_SCOPE: &str = "launch/patient openid fhirUser offline_access patient/ExplanationOfBenefit.rs patient/Patient.read patient/Coverage.rs";

impl Harness {
    pub async fn get(&self, path_and_query: &str) -> Reply {
        let request = Request::get(path_and_query).body(Bytes::new()).unwrap();
        into_reply(self.server.handle(request).await)
    }

    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        cookie: Option<&str>,
        basic: Option<&str>,
    ) -> Reply {
        let mut builder =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            builder = builder.header("cookie", c);
        }
        if let Some(b) = basic {
            builder = builder.header("authorization", format!("Basic {b}"));
        }
        let request = builder.body(Bytes::from(query(form))).unwrap();
        into_reply(self.server.handle(request).await)
    }

    pub async fn authorize(&self, params: &[(&str, &str)]) -> Reply {
        self.get(&format!("/authorize?{}", query(params))).await
    }

    /// The first sign-in step: the enrolled member's email, from the page's form.
    pub async fn submit_email(&self, page: &Reply, cookie: &str) -> Reply {
        let csrf = page.csrf().unwrap();
        self.post(
            "/authorize/email",
            &[("csrf", &csrf), ("email", EMAIL)],
            Some(cookie),
            None,
        )
        .await
    }

    /// The identity questions, answered right for the enrolled member.
    pub async fn submit_identity(&self, csrf: &str, cookie: &str) -> Reply {
        self.post(
            "/authorize/identity",
            &[
                ("csrf", csrf),
                ("birth_date", "1980-01-01"),
                ("member_id", "M1"),
                ("postal_code", "12345"),
            ],
            Some(cookie),
            None,
        )
        .await
    }

    /// The emailed one-time code.
    pub async fn submit_code(&self, csrf: &str, code: &str, cookie: &str) -> Reply {
        self.post(
            "/authorize/code",
            &[("csrf", csrf), ("code", code)],
            Some(cookie),
            None,
        )
        .await
    }

    /// Runs the pages up to (not including) the consent decision; returns the cookie
    /// and the consent page.
    pub async fn to_consent(&self, client_id: &str, scope: &str) -> (String, Reply) {
        let page = self.authorize(&authorize_params(client_id, scope)).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let cookie = format!("pa_txn={}", page.cookie("pa_txn").unwrap());
        let page = self.submit_email(&page, &cookie).await;
        assert!(page.text.contains("birth_date"), "{}", page.text);
        let csrf = page.csrf().unwrap();
        let page = self.submit_identity(&csrf, &cookie).await;
        assert!(page.text.contains("p***@example.org"), "{}", page.text);
        let page = self.submit_code(&csrf, CODE, &cookie).await;
        assert!(page.text.contains("decision"), "{}", page.text);
        (cookie, page)
    }

    /// The whole launch, approving every offered type; returns the code.
    pub async fn launch(&self, client_id: &str, scope: &str) -> String {
        let (cookie, page) = self.to_consent(client_id, scope).await;
        let csrf = page.csrf().unwrap();
        let mut form = vec![("csrf", csrf.as_str()), ("decision", "approve")];
        for t in [
            "ExplanationOfBenefit",
            "Patient",
            "Coverage",
            "Practitioner",
            "Organization",
            "RelatedPerson",
            "Consent",
        ] {
            form.push(("type", t));
        }
        let done = self
            .post("/authorize/consent", &form, Some(&cookie), None)
            .await;
        assert_eq!(done.status, 303, "{}", done.text);
        assert_eq!(done.location_param("state").as_deref(), Some("st+/=&%ate"));
        done.location_param("code").unwrap()
    }

    pub async fn exchange(&self, client_id: &str, code: &str, verifier: &str) -> Reply {
        let request = CodeExchange::new(code).client_id(client_id);
        request.field("code_verifier", verifier).send(self).await
    }

    /// A full launch and token exchange for the harness app.
    pub async fn tokens(&self) -> Value {
        let code = self.launch(&self.app.client_id, FULL_SCOPE).await;
        let reply = self.exchange(&self.app.client_id, &code, VERIFIER).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()
    }

    pub async fn refresh(&self, client_id: &str, handle: &str, scope: Option<&str>) -> Reply {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", handle),
            ("client_id", client_id),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.post("/token", &form, None, None).await
    }

    /// `GET /ExplanationOfBenefit/{id}` on the FHIR handler with `token`.
    pub async fn read_eob(&self, id: &str, token: &str) -> u16 {
        let request = Request::get(format!("/ExplanationOfBenefit/{id}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .unwrap();
        self.eob.handle(request).await.status().as_u16()
    }

    pub async fn search_eob(&self, query: &str, token: &str) -> Value {
        let request = Request::get(format!("/ExplanationOfBenefit?{query}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .unwrap();
        let response = self.eob.handle(request).await;
        serde_json::from_slice(response.body()).unwrap_or(Value::Null)
    }
}

/// An authorization-code request to `/token`, honest by default (the harness's
/// redirect URI and PKCE verifier); each attack changes only the field it is about.
pub struct CodeExchange<'a> {
    form: Vec<(&'a str, &'a str)>,
    basic: Option<String>,
}

impl<'a> CodeExchange<'a> {
    pub fn new(code: &'a str) -> Self {
        let form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        CodeExchange { form, basic: None }
    }

    /// Sets (or replaces) one form field.
    pub fn field(mut self, name: &'a str, value: &'a str) -> Self {
        self.form.retain(|(n, _)| *n != name);
        self.form.push((name, value));
        self
    }

    pub fn client_id(self, client_id: &'a str) -> Self {
        self.field("client_id", client_id)
    }

    /// HTTP Basic client authentication (`client_secret_basic`).
    pub fn basic(mut self, client_id: &str, secret: &str) -> Self {
        self.basic = Some(STANDARD.encode(format!("{client_id}:{secret}")));
        self
    }

    pub async fn send(self, h: &Harness) -> Reply {
        h.post("/token", &self.form, None, self.basic.as_deref())
            .await
    }
}

/// The decoded payload of a JWT (no verification: tests look at what was minted).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
