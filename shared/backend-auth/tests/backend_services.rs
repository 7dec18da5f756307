//! SMART Backend Services token requests, and the attacks the spec's checks stop.

use std::sync::Arc;

use backend_auth::grant::{Issuance, client_credentials};
use backend_auth::testing::{ClientKey, assertion_claims};
use backend_auth::{
    BackendAuthError, ClientKeyCache, GrantRequest, HttpKeyFetcher, KeyFetcher, NewBackendClient,
    clients, verify_system,
};
use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use smart_auth::{
    AccessClaims, AuthError, BoxFuture, LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig,
};
use store_redb::RedbStore;

const BASE: &str = "https://fhir.plan.example";
const TOKEN_ENDPOINT: &str = "https://fhir.plan.example/token";
const NPI: &str = "1234567893";

struct World {
    _dir: tempfile::TempDir,
    store: RedbStore,
    issuer: LocalIssuer,
    keys: ClientKeyCache,
}

fn world_with(fetcher: Arc<dyn KeyFetcher>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("db")).unwrap();
    let issuer =
        LocalIssuer::load_or_create(&dir.path().join("issuer"), BASE.into(), BASE.into()).unwrap();
    World {
        _dir: dir,
        store,
        issuer,
        keys: ClientKeyCache::new(fetcher),
    }
}

fn world() -> World {
    world_with(Arc::new(HttpKeyFetcher))
}

impl World {
    async fn register(&self, key: &ClientKey, scope: &str) -> String {
        let new = NewBackendClient {
            name: "Clinic".into(),
            jwks: Some(key.jwks()),
            scope: scope.into(),
            provider_npis: vec![NPI.into()],
            ..NewBackendClient::default()
        };
        clients::register(&self.store, &new)
            .await
            .unwrap()
            .client_id
    }

    async fn token(&self, assertion: &str, scope: &str) -> Result<String, BackendAuthError> {
        let at = Issuance {
            issuer: BASE,
            token_endpoint: TOKEN_ENDPOINT,
            signer: &self.issuer,
            now: fhir::clock::unix_now(),
        };
        let request = GrantRequest {
            grant_type: Some("client_credentials"),
            client_assertion_type: Some(backend_auth::JWT_BEARER),
            client_assertion: Some(assertion),
            scope: Some(scope),
        };
        client_credentials(&self.store, &self.keys, &at, &request)
            .await
            .map(|r| r.access_token)
    }

    fn verifier(&self) -> TokenVerifier {
        TokenVerifier::new(VerifierConfig::new(
            BASE.into(),
            BASE.into(),
            Arc::new(StaticJwks::new(self.issuer.jwks())),
        ))
    }
}

fn refused_as_client(result: Result<String, BackendAuthError>) {
    match result {
        Err(error) => assert_eq!(error.oauth_code(), "invalid_client", "{error}"),
        Ok(_) => panic!("the assertion must be refused"),
    }
}

#[tokio::test]
async fn an_rs384_or_es384_assertion_gets_a_short_lived_system_token_with_the_npi() {
    let w = world();
    for key in [ClientKey::rs384("rsa-1"), ClientKey::es384("ec-1")] {
        let client = w.register(&key, "system/*.rs").await;
        let token = w
            .token(
                &key.assertion(&client, TOKEN_ENDPOINT, 120),
                "system/ExplanationOfBenefit.rs system/Group.r",
            )
            .await
            .unwrap();
        let principal = verify_system(&w.verifier(), Some(&format!("Bearer {token}")))
            .await
            .unwrap();
        assert_eq!(principal.client_id, client);
        assert_eq!(principal.provider_npis, vec![NPI.to_owned()]);
        assert!(principal.scopes.allows("Group", true));
        assert!(
            !principal.scopes.allows("Group", false),
            "only what was asked for"
        );
    }
}

#[tokio::test]
async fn a_replayed_jti_is_refused() {
    let w = world();
    let key = ClientKey::rs384("k");
    let client = w.register(&key, "system/*.rs").await;
    let assertion = key.assertion(&client, TOKEN_ENDPOINT, 120);
    assert!(w.token(&assertion, "system/*.rs").await.is_ok());
    refused_as_client(w.token(&assertion, "system/*.rs").await);
    // The same jti in a freshly signed assertion is a replay too.
    let mut claims = assertion_claims(&client, TOKEN_ENDPOINT, 100);
    claims["jti"] = json!("fixed");
    assert!(w.token(&key.sign(&claims), "system/*.rs").await.is_ok());
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 5);
    refused_as_client(w.token(&key.sign(&claims), "system/*.rs").await);
}

#[tokio::test]
async fn wrong_audience_issuer_subject_or_missing_jti_are_refused() {
    let w = world();
    let key = ClientKey::es384("k");
    let client = w.register(&key, "system/*.rs").await;
    let good = assertion_claims(&client, TOKEN_ENDPOINT, 120);
    let mut cases: Vec<Value> = Vec::new();
    for (field, value) in [
        ("aud", json!("https://fhir.plan.example/other")),
        ("aud", json!(BASE)),
        ("sub", json!("svc-someoneelse")),
        ("iss", json!("svc-someoneelse")),
    ] {
        let mut c = good.clone();
        c[field] = value;
        cases.push(c);
    }
    let mut no_jti = good.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    cases.push(no_jti);
    for claims in cases {
        refused_as_client(w.token(&key.sign(&claims), "system/*.rs").await);
    }
}

#[tokio::test]
async fn expired_and_too_long_lived_assertions_are_refused() {
    let w = world();
    let key = ClientKey::rs384("k");
    let client = w.register(&key, "system/*.rs").await;
    refused_as_client(
        w.token(&key.assertion(&client, TOKEN_ENDPOINT, -120), "system/*.rs")
            .await,
    );
    refused_as_client(
        w.token(&key.assertion(&client, TOKEN_ENDPOINT, 600), "system/*.rs")
            .await,
    );
    assert!(
        w.token(&key.assertion(&client, TOKEN_ENDPOINT, 300), "system/*.rs")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_as_secret_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let w = world();
    let key = ClientKey::rs384("k");
    let client = w.register(&key, "system/*.rs").await;
    let claims = assertion_claims(&client, TOKEN_ENDPOINT, 120);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k", "typ": "JWT"})),
        b64(&claims)
    );
    refused_as_client(w.token(&none, "system/*.rs").await);
    // HS256 keyed with the registered public key's text: the classic confusion attack.
    let public = serde_json::to_string(&key.public_jwk()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k".into());
    let hs = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    refused_as_client(w.token(&hs, "system/*.rs").await);
}

#[tokio::test]
async fn a_key_reference_in_the_header_is_refused_even_with_a_good_signature() {
    let w = world();
    let key = ClientKey::es384("k");
    let client = w.register(&key, "system/*.rs").await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
    header.kid = Some("k".into());
    header.jku = Some("https://attacker.example/jwks.json".into());
    let signed = key.sign_with_header(header, &assertion_claims(&client, TOKEN_ENDPOINT, 120));
    refused_as_client(w.token(&signed, "system/*.rs").await);
}

#[tokio::test]
async fn an_unknown_kid_or_a_key_of_another_client_is_refused() {
    let w = world();
    let key = ClientKey::rs384("k");
    let client = w.register(&key, "system/*.rs").await;
    let stranger = ClientKey::rs384("k2");
    refused_as_client(
        w.token(
            &stranger.assertion(&client, TOKEN_ENDPOINT, 120),
            "system/*.rs",
        )
        .await,
    );
    // Same kid, different key: the signature fails.
    let impostor = ClientKey::rs384("k");
    refused_as_client(
        w.token(
            &impostor.assertion(&client, TOKEN_ENDPOINT, 120),
            "system/*.rs",
        )
        .await,
    );
    // An unknown client.
    refused_as_client(
        w.token(
            &key.assertion("svc-000000000000000000000000", TOKEN_ENDPOINT, 120),
            "system/*.rs",
        )
        .await,
    );
}

#[tokio::test]
async fn a_scope_beyond_the_registration_is_refused() {
    let w = world();
    let key = ClientKey::es384("k");
    let client = w.register(&key, "system/Group.r system/Patient.rs").await;
    let result = w
        .token(
            &key.assertion(&client, TOKEN_ENDPOINT, 120),
            "system/ExplanationOfBenefit.rs",
        )
        .await;
    assert_eq!(result.err().map(|e| e.oauth_code()), Some("invalid_scope"));
    let result = w
        .token(&key.assertion(&client, TOKEN_ENDPOINT, 120), "system/*.r")
        .await;
    assert_eq!(result.err().map(|e| e.oauth_code()), Some("invalid_scope"));
    assert!(
        w.token(
            &key.assertion(&client, TOKEN_ENDPOINT, 120),
            "system/Group.r"
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn a_member_token_is_not_a_system_token_and_the_reverse() {
    let w = world();
    let key = ClientKey::rs384("k");
    let client = w.register(&key, "system/*.rs").await;
    let member = w
        .issuer
        .mint(&AccessClaims::for_member(
            "p1",
            "app-a",
            "patient/*.rs",
            std::time::Duration::from_secs(600),
        ))
        .unwrap();
    let refused = verify_system(&w.verifier(), Some(&format!("Bearer {member}"))).await;
    assert!(refused.is_err(), "a member token on a system endpoint");
    let system = w
        .token(&key.assertion(&client, TOKEN_ENDPOINT, 120), "system/*.rs")
        .await
        .unwrap();
    let refused = w.verifier().verify(Some(&format!("Bearer {system}"))).await;
    assert!(
        matches!(
            refused,
            Err(AuthError::NotAnAccessToken) | Err(AuthError::MissingClaim(_))
        ),
        "a system token on a member endpoint: {refused:?}"
    );
}

/// A fetcher that counts its calls and serves a set the test can change.
struct CountingFetcher {
    set: std::sync::Mutex<JwkSet>,
    calls: std::sync::atomic::AtomicUsize,
}

impl KeyFetcher for CountingFetcher {
    fn fetch<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<JwkSet, AuthError>> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let set = self.set.lock().unwrap().clone();
        Box::pin(async move { Ok(set) })
    }
}

#[tokio::test]
async fn a_jwks_uri_is_fetched_once_and_an_unknown_kid_does_not_refetch_within_a_minute() {
    let key = ClientKey::es384("k1");
    let fetcher = Arc::new(CountingFetcher {
        set: std::sync::Mutex::new(key.jwks()),
        calls: Default::default(),
    });
    let w = world_with(fetcher.clone());
    let new = NewBackendClient {
        name: "Clinic".into(),
        jwks_uri: Some("https://clinic.example/jwks.json".into()),
        scope: "system/*.rs".into(),
        provider_npis: vec![NPI.into()],
        ..NewBackendClient::default()
    };
    let client = clients::register(&w.store, &new).await.unwrap().client_id;
    for _ in 0..3 {
        assert!(
            w.token(&key.assertion(&client, TOKEN_ENDPOINT, 120), "system/*.rs")
                .await
                .is_ok()
        );
    }
    assert_eq!(fetcher.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let unknown = ClientKey::es384("k-unknown");
    for _ in 0..5 {
        refused_as_client(
            w.token(
                &unknown.assertion(&client, TOKEN_ENDPOINT, 120),
                "system/*.rs",
            )
            .await,
        );
    }
    assert_eq!(
        fetcher.calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "bounded refetch"
    );
}
