//! Token attacks from member-auth.md §8.A, each against a real verifier and real keys.
//!
//! Tokens are minted by a [`LocalIssuer`] (the honest issuer) or assembled by hand with
//! jsonwebtoken when the attack needs a header or claim the issuer would never produce.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fhir::clock::unix_now;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use smart_auth::{
    AccessClaims, AuthError, BoxFuture, Interaction, JwkSet, JwksSource, KEY_FILE_NAME,
    LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig,
};
use tempfile::TempDir;

const ISSUER: &str = "https://auth.example.org";
const AUDIENCE: &str = "https://fhir.example.org/r4";
const SCOPES: &str = "launch/patient openid fhirUser patient/ExplanationOfBenefit.rs patient/Coverage.rs \
                      patient/Patient.rs patient/Practitioner.rs patient/Organization.rs";

/// A key set source that counts fetches and can be rotated or broken.
struct CountingJwks {
    inner: StaticJwks,
    fetches: AtomicUsize,
    broken: std::sync::atomic::AtomicBool,
}

impl CountingJwks {
    fn new(keys: JwkSet) -> Arc<CountingJwks> {
        Arc::new(CountingJwks {
            inner: StaticJwks::new(keys),
            fetches: AtomicUsize::new(0),
            broken: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl JwksSource for CountingJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            // Let concurrent callers pile up behind the gate.
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.broken.load(Ordering::SeqCst) {
                return Err(AuthError::KeysUnavailable("test outage".into()));
            }
            self.inner.fetch().await
        })
    }
}

struct Harness {
    _dir: TempDir,
    issuer: LocalIssuer,
    /// The issuer's private key, for hand-assembled tokens.
    signing_key: EncodingKey,
    jwks: Arc<CountingJwks>,
    verifier: TokenVerifier,
}

fn issuer_in(dir: &TempDir) -> (LocalIssuer, EncodingKey) {
    let issuer = LocalIssuer::load_or_create(dir.path(), ISSUER.into(), AUDIENCE.into()).unwrap();
    let pem = std::fs::read(dir.path().join(KEY_FILE_NAME)).unwrap();
    (issuer, EncodingKey::from_rsa_pem(&pem).unwrap())
}

async fn harness_with(refetch_interval: Duration, leeway: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, signing_key) = issuer_in(&dir);
    let jwks = CountingJwks::new(issuer.jwks());
    let verifier = TokenVerifier::new(VerifierConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks: jwks.clone(),
        refetch_interval,
        leeway,
    });
    verifier.prime().await.unwrap();
    Harness {
        _dir: dir,
        issuer,
        signing_key,
        jwks,
        verifier,
    }
}

async fn harness() -> Harness {
    harness_with(Duration::from_secs(300), Duration::from_secs(30)).await
}

fn member_claims() -> AccessClaims {
    let mut claims = AccessClaims::for_member("p1", "app-a", SCOPES, Duration::from_secs(3600));
    claims.sub = "member-sub-1".into();
    claims.grant_id = Some("grant-1".into());
    claims
}

/// The honest issuer's claims as JSON, for tests that then break one claim.
fn claims_json(h: &Harness) -> Value {
    let mut claims = member_claims();
    claims.iss = ISSUER.into();
    claims.aud = AUDIENCE.into();
    claims.jti = Some("jti-1".into());
    let _ = h;
    serde_json::to_value(claims).unwrap()
}

fn rs256_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    header
}

/// Signs arbitrary claims with the issuer's real key under its real kid.
fn sign(h: &Harness, claims: &Value) -> String {
    jsonwebtoken::encode(&rs256_header(h.issuer.kid()), claims, &h.signing_key).unwrap()
}

/// The honest claims under a hand-made `header`, signed with the issuer's real key.
fn sign_under(h: &Harness, header: &Header) -> String {
    jsonwebtoken::encode(header, &claims_json(h), &h.signing_key).unwrap()
}

/// The honest claims changed by `edit`, signed with the issuer's real key under its
/// real kid: the one way the claim attacks build their token.
fn forge(h: &Harness, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = claims_json(h);
    edit(&mut claims);
    sign(h, &claims)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn verify(h: &Harness, token: &str) -> Result<smart_auth::Principal, AuthError> {
    h.verifier.verify(Some(&bearer(token))).await
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

// ---------------------------------------------------------------- the honest path

#[tokio::test]
async fn valid_token_yields_principal() {
    let h = harness().await;
    let token = h.issuer.mint(&member_claims()).unwrap();
    let principal = verify(&h, &token).await.unwrap();
    assert_eq!(principal.subject, "member-sub-1");
    assert_eq!(principal.client_id, "app-a");
    assert_eq!(principal.patient, "p1");
    assert_eq!(principal.grant_id.as_deref(), Some("grant-1"));
    assert!(principal.token_id.is_some());
    assert!(principal.scopes.allows(
        fhir::ResourceType::ExplanationOfBenefit,
        Interaction::Search
    ));
    assert!(
        !principal
            .scopes
            .allows(fhir::ResourceType::RelatedPerson, Interaction::Read)
    );
    assert_eq!(h.jwks.fetches(), 1);
}

#[tokio::test]
async fn lowercase_bearer_scheme_is_accepted() {
    let h = harness().await;
    let token = h.issuer.mint(&member_claims()).unwrap();
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let header = format!("{scheme} {token}");
        assert!(h.verifier.verify(Some(&header)).await.is_ok(), "{scheme}");
    }
}

#[tokio::test]
async fn verifier_without_prime_fetches_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, _) = issuer_in(&dir);
    let jwks = CountingJwks::new(issuer.jwks());
    let verifier = TokenVerifier::new(VerifierConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks: jwks.clone(),
        refetch_interval: Duration::from_secs(300),
        leeway: Duration::from_secs(30),
    });
    let token = issuer.mint(&member_claims()).unwrap();
    assert!(verifier.verify(Some(&bearer(&token))).await.is_ok());
    assert!(verifier.verify(Some(&bearer(&token))).await.is_ok());
    assert_eq!(jwks.fetches(), 1);
}

// ---------------------------------------------------------------- header shape

#[tokio::test]
async fn missing_authorization_header() {
    let h = harness().await;
    let err = h.verifier.verify(None).await.unwrap_err();
    assert_eq!(err, AuthError::MissingToken);
    assert_eq!(err.www_authenticate(), r#"Bearer realm="fhir""#);
    assert_eq!(err.status(), 401);
}

#[tokio::test]
async fn basic_scheme_is_rejected() {
    let h = harness().await;
    let err = h
        .verifier
        .verify(Some("Basic YXBwLWE6c2VjcmV0"))
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::MalformedHeader);
    assert_eq!(
        err.www_authenticate(),
        r#"Bearer realm="fhir", error="invalid_token""#
    );
}

#[tokio::test]
async fn two_credentials_in_one_header_are_rejected() {
    let h = harness().await;
    let token = h.issuer.mint(&member_claims()).unwrap();
    let header = format!("Bearer {token}, Bearer {token}");
    assert_eq!(
        h.verifier.verify(Some(&header)).await.unwrap_err(),
        AuthError::MalformedHeader
    );
}

#[tokio::test]
async fn oversized_header_is_rejected_without_parsing() {
    let h = harness().await;
    let huge = format!("Bearer {}", "a".repeat(16 * 1024));
    assert_eq!(
        h.verifier.verify(Some(&huge)).await.unwrap_err(),
        AuthError::TokenTooLarge
    );
    // A huge but well-formed-looking token is refused just the same.
    let token = h.issuer.mint(&member_claims()).unwrap();
    let padded = format!("Bearer {token}{}", "A".repeat(9 * 1024));
    assert_eq!(
        h.verifier.verify(Some(&padded)).await.unwrap_err(),
        AuthError::TokenTooLarge
    );
}

// ---------------------------------------------------------------- algorithm and key attacks

#[tokio::test]
async fn alg_none_is_rejected() {
    let h = harness().await;
    let header = json!({ "alg": "none", "typ": "JWT", "kid": h.issuer.kid() });
    let token = format!("{}.{}.", b64(&header), b64(&claims_json(&h)));
    let err = verify(&h, &token).await.unwrap_err();
    assert_eq!(err, AuthError::MalformedToken);
    // With a junk signature too.
    let token = format!("{}.{}.AAAA", b64(&header), b64(&claims_json(&h)));
    assert!(verify(&h, &token).await.is_err());
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let h = harness().await;
    let jwks = h.issuer.jwks_json();
    let n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let n_bytes = URL_SAFE_NO_PAD.decode(&n).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(h.issuer.kid().into());
    // Every plausible "public key as HMAC secret" an attacker might try.
    for secret in [
        n.as_bytes().to_vec(),
        n_bytes,
        serde_json::to_vec(&jwks["keys"][0]).unwrap(),
    ] {
        let token = jsonwebtoken::encode(
            &header,
            &claims_json(&h),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_eq!(
            verify(&h, &token).await.unwrap_err(),
            AuthError::DisallowedAlgorithm
        );
    }
}

#[tokio::test]
async fn other_asymmetric_algorithms_are_rejected() {
    let h = harness().await;
    let claims = claims_json(&h);
    for alg in ["RS384", "RS512", "PS256", "ES256", "EdDSA"] {
        let header = json!({ "alg": alg, "kid": h.issuer.kid() });
        let good = sign(&h, &claims);
        let signature = good.rsplit('.').next().unwrap();
        let token = format!("{}.{}.{}", b64(&header), b64(&claims), signature);
        assert_eq!(
            verify(&h, &token).await.unwrap_err(),
            AuthError::DisallowedAlgorithm,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn unsigned_token_is_rejected() {
    let h = harness().await;
    let good = sign(&h, &claims_json(&h));
    let unsigned = format!("{}.", good.rsplit_once('.').unwrap().0);
    let err = verify(&h, &unsigned).await.unwrap_err();
    assert!(
        matches!(err, AuthError::InvalidSignature | AuthError::MalformedToken),
        "{err:?}"
    );
}

#[tokio::test]
async fn token_signed_by_attacker_key_under_real_kid_is_rejected() {
    let h = harness().await;
    let attacker_dir = tempfile::tempdir().unwrap();
    let (_, attacker_key) = issuer_in(&attacker_dir);
    let token = jsonwebtoken::encode(
        &rs256_header(h.issuer.kid()),
        &claims_json(&h),
        &attacker_key,
    )
    .unwrap();
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::InvalidSignature
    );
}

#[tokio::test]
async fn modified_claims_break_the_signature() {
    // ONC Showdown 2018: change the patient in a genuine token and resend it.
    let h = harness().await;
    let token = h.issuer.mint(&member_claims()).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["patient"] = json!("q1");
    claims["fhirUser"] = json!("Patient/q1");
    parts[1] = b64(&claims);
    assert_eq!(
        verify(&h, &parts.join(".")).await.unwrap_err(),
        AuthError::InvalidSignature
    );
}

#[tokio::test]
async fn missing_kid_is_rejected() {
    let h = harness().await;
    let token = sign_under(&h, &Header::new(Algorithm::RS256));
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::MissingKeyId
    );
    let token = sign_under(&h, &rs256_header(""));
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::MissingKeyId
    );
}

#[tokio::test]
async fn wrong_kid_is_rejected() {
    let h = harness().await;
    let token = sign_under(&h, &rs256_header("not-our-kid"));
    assert_eq!(verify(&h, &token).await.unwrap_err(), AuthError::UnknownKey);
}

#[tokio::test]
async fn jku_x5u_jwk_and_crit_headers_are_rejected() {
    let h = harness().await;
    let claims = claims_json(&h);
    let attacker_jwk = h.issuer.jwks().keys[0].clone();

    let mut jku = rs256_header(h.issuer.kid());
    jku.jku = Some("https://attacker.example/jwks.json".into());
    let mut x5u = rs256_header(h.issuer.kid());
    x5u.x5u = Some("https://attacker.example/cert.pem".into());
    let mut jwk = rs256_header(h.issuer.kid());
    jwk.jwk = Some(attacker_jwk);
    let mut crit = rs256_header(h.issuer.kid());
    crit.crit = Some(vec!["exp".into()]);

    for header in [jku, x5u, jwk, crit] {
        // Signed with the real key: even an otherwise valid token is refused.
        let token = jsonwebtoken::encode(&header, &claims, &h.signing_key).unwrap();
        assert_eq!(
            verify(&h, &token).await.unwrap_err(),
            AuthError::ForbiddenHeader
        );
    }
    assert_eq!(h.jwks.fetches(), 1, "no fetch was triggered by a header");
}

// ---------------------------------------------------------------- key cache

#[tokio::test]
async fn unknown_kid_refetch_is_limited() {
    let h = harness().await;
    for i in 0..100 {
        let token = sign_under(&h, &rs256_header(&format!("kid-{i}")));
        assert_eq!(verify(&h, &token).await.unwrap_err(), AuthError::UnknownKey);
    }
    // One fetch at cold start, one refetch for the whole flood.
    assert_eq!(h.jwks.fetches(), 2);
    // Known keys keep working throughout.
    let token = h.issuer.mint(&member_claims()).unwrap();
    assert!(verify(&h, &token).await.is_ok());
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let h = Arc::new(harness().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let token = sign_under(&h, &rs256_header(&format!("kid-{i}")));
            verify(&h, &token).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap_err(), AuthError::UnknownKey);
    }
    assert_eq!(h.jwks.fetches(), 2);
}

#[tokio::test]
async fn refetch_is_allowed_again_after_the_interval() {
    let h = harness_with(Duration::from_millis(50), Duration::from_secs(30)).await;
    let unknown = sign_under(&h, &rs256_header("kid-x"));
    assert!(verify(&h, &unknown).await.is_err());
    assert!(verify(&h, &unknown).await.is_err());
    assert_eq!(h.jwks.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(verify(&h, &unknown).await.is_err());
    assert_eq!(h.jwks.fetches(), 3);
}

#[tokio::test]
async fn key_rotation_unknown_kid_triggers_one_refetch_that_finds_the_new_key() {
    let h = harness().await;
    let old_token = h.issuer.mint(&member_claims()).unwrap();
    // The issuer rotates: a new key, published alongside the old one.
    let new_dir = tempfile::tempdir().unwrap();
    let (rotated, _) = issuer_in(&new_dir);
    assert_ne!(rotated.kid(), h.issuer.kid());
    let mut published = h.issuer.jwks();
    published.keys.extend(rotated.jwks().keys);
    h.jwks.inner.replace(published).await;

    let new_token = rotated.mint(&member_claims()).unwrap();
    assert_eq!(verify(&h, &new_token).await.unwrap().patient, "p1");
    assert_eq!(verify(&h, &old_token).await.unwrap().patient, "p1");
    assert_eq!(h.jwks.fetches(), 2);
}

#[tokio::test]
async fn keys_unavailable_at_cold_start_is_a_401_and_a_server_fault() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, _) = issuer_in(&dir);
    let jwks = CountingJwks::new(issuer.jwks());
    jwks.broken.store(true, Ordering::SeqCst);
    let verifier = TokenVerifier::new(VerifierConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks: jwks.clone(),
        refetch_interval: Duration::from_secs(300),
        leeway: Duration::from_secs(30),
    });
    assert!(verifier.prime().await.unwrap_err().is_server_fault());
    let token = issuer.mint(&member_claims()).unwrap();
    let err = verifier.verify(Some(&bearer(&token))).await.unwrap_err();
    assert_eq!(err.status(), 401);
    assert!(err.is_server_fault());
    // Recovery: the endpoint comes back; the next refetch window picks the keys up.
    jwks.broken.store(false, Ordering::SeqCst);
    assert!(
        verifier.verify(Some(&bearer(&token))).await.is_err(),
        "still inside the window"
    );
    assert!(verifier.prime().await.is_ok());
    assert!(verifier.verify(Some(&bearer(&token))).await.is_ok());
}

#[tokio::test]
async fn non_signing_and_non_rs256_keys_in_the_set_are_ignored() {
    let h = harness().await;
    let mut set = h.issuer.jwks();
    set.keys[0].common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    h.jwks.inner.replace(set).await;
    // Force a reload through the refetch path with a fresh verifier.
    let verifier = TokenVerifier::new(VerifierConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks: h.jwks.clone(),
        refetch_interval: Duration::from_secs(300),
        leeway: Duration::from_secs(30),
    });
    verifier.prime().await.unwrap();
    let token = h.issuer.mint(&member_claims()).unwrap();
    assert_eq!(
        verifier.verify(Some(&bearer(&token))).await.unwrap_err(),
        AuthError::UnknownKey
    );
}

// ---------------------------------------------------------------- time

#[tokio::test]
async fn expired_token_is_rejected() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims["iat"] = json!(unix_now() - 3600);
        claims["exp"] = json!(unix_now() - 120);
    });
    assert_eq!(verify(&h, &token).await.unwrap_err(), AuthError::Expired);
}

#[tokio::test]
async fn expiry_inside_the_leeway_is_accepted() {
    let h = harness().await; // 30 s leeway
    let token = forge(&h, |claims| {
        claims["exp"] = json!(unix_now() - 10);
    });
    assert!(verify(&h, &token).await.is_ok());
}

#[tokio::test]
async fn leeway_above_sixty_seconds_is_clamped() {
    let h = harness_with(Duration::from_secs(300), Duration::from_secs(3600)).await;
    let token = forge(&h, |claims| {
        claims["exp"] = json!(unix_now() - 120);
    });
    assert_eq!(verify(&h, &token).await.unwrap_err(), AuthError::Expired);
}

#[tokio::test]
async fn not_yet_valid_nbf_is_rejected() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims["nbf"] = json!(unix_now() + 600);
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::NotYetValid
    );
}

#[tokio::test]
async fn iat_in_the_future_is_rejected() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims["iat"] = json!(unix_now() + 600);
        claims["exp"] = json!(unix_now() + 4200);
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::NotYetValid
    );
}

#[tokio::test]
async fn string_exp_or_nbf_is_rejected() {
    // CVE-2026-25537 pattern: a wrongly typed exp/nbf must not count as absent.
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims["exp"] = json!("9999999999");
    });
    assert!(verify(&h, &token).await.is_err());
    let token = forge(&h, |claims| {
        claims["nbf"] = json!("9999999999");
    });
    assert!(verify(&h, &token).await.is_err());
}

#[tokio::test]
async fn missing_exp_or_iat_is_rejected() {
    let h = harness().await;
    for claim in ["exp", "iat"] {
        let token = forge(&h, |claims| {
            claims.as_object_mut().unwrap().remove(claim);
        });
        assert!(verify(&h, &token).await.is_err(), "{claim}");
    }
}

// ---------------------------------------------------------------- issuer, audience, kind

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let h = harness().await;
    let mut claims = member_claims();
    claims.iss = "https://cognito-idp.us-east-1.amazonaws.com/other-pool".into();
    assert_eq!(
        verify(&h, &h.issuer.mint(&claims).unwrap())
            .await
            .unwrap_err(),
        AuthError::WrongIssuer
    );
    let token = forge(&h, |claims| {
        claims.as_object_mut().unwrap().remove("iss");
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::MissingClaim("iss")
    );
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let h = harness().await;
    let mut claims = member_claims();
    claims.aud = "https://other-api.example.org".into();
    assert_eq!(
        verify(&h, &h.issuer.mint(&claims).unwrap())
            .await
            .unwrap_err(),
        AuthError::WrongAudience
    );
    let token = forge(&h, |claims| {
        claims.as_object_mut().unwrap().remove("aud");
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::MissingClaim("aud")
    );
    // An audience array naming us plus someone else is not what we mint: refused.
    let token = forge(&h, |claims| {
        claims["aud"] = json!([AUDIENCE, "https://other-api.example.org"]);
    });
    assert!(verify(&h, &token).await.is_err());
}

#[tokio::test]
async fn id_token_is_rejected_as_access_token() {
    let h = harness().await;
    let mut claims = member_claims();
    claims.token_use = "id".into();
    assert_eq!(
        verify(&h, &h.issuer.mint(&claims).unwrap())
            .await
            .unwrap_err(),
        AuthError::NotAnAccessToken
    );
    let token = forge(&h, |claims| {
        claims.as_object_mut().unwrap().remove("token_use");
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::NotAnAccessToken
    );
}

#[tokio::test]
async fn missing_patient_is_rejected() {
    let h = harness().await;
    let absent = forge(&h, |claims| {
        claims.as_object_mut().unwrap().remove("patient");
        claims.as_object_mut().unwrap().remove("fhirUser");
    });
    let empty = forge(&h, |claims| {
        claims["patient"] = json!("");
        claims.as_object_mut().unwrap().remove("fhirUser");
    });
    for token in [absent, empty] {
        assert_eq!(
            verify(&h, &token).await.unwrap_err(),
            AuthError::MissingClaim("patient")
        );
    }
}

#[tokio::test]
async fn invalid_patient_id_is_rejected() {
    let h = harness().await;
    for bad in ["p1/../q1", "p1#x", "Patient/p1", &"a".repeat(65)] {
        let token = forge(&h, |claims| {
            claims["patient"] = json!(bad);
            claims.as_object_mut().unwrap().remove("fhirUser");
        });
        assert_eq!(
            verify(&h, &token).await.unwrap_err(),
            AuthError::InvalidClaim("patient"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn fhir_user_naming_another_member_is_rejected() {
    let h = harness().await;
    for other in [
        "Patient/q1",
        "RelatedPerson/p1",
        "Patient/p1/_history/2",
        "garbage",
    ] {
        let token = forge(&h, |claims| {
            claims["fhirUser"] = json!(other);
        });
        assert_eq!(
            verify(&h, &token).await.unwrap_err(),
            AuthError::InvalidClaim("fhirUser"),
            "{other}"
        );
    }
    let token = forge(&h, |claims| {
        claims["fhirUser"] = json!(format!("{AUDIENCE}/Patient/p1"));
    });
    assert!(verify(&h, &token).await.is_ok(), "absolute fhirUser URL");
}

#[tokio::test]
async fn missing_client_id_is_rejected() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims.as_object_mut().unwrap().remove("client_id");
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::MissingClaim("client_id")
    );
}

#[tokio::test]
async fn missing_sub_is_rejected() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims.as_object_mut().unwrap().remove("sub");
    });
    assert_eq!(
        verify(&h, &token).await.unwrap_err(),
        AuthError::MissingClaim("sub")
    );
}

#[tokio::test]
async fn user_and_system_scopes_in_a_token_grant_nothing() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims["scope"] =
            json!("user/*.rs system/*.rs patient/ExplanationOfBenefit.dus Patient/Coverage.read");
    });
    let principal = verify(&h, &token).await.unwrap();
    assert!(!principal.scopes.has_resource_scopes());
}

// ---------------------------------------------------------------- what errors reveal

#[tokio::test]
async fn errors_never_echo_the_token() {
    let h = harness().await;
    let token = forge(&h, |claims| {
        claims["token_use"] = json!("id");
    });
    let err = verify(&h, &token).await.unwrap_err();
    for text in [
        err.to_string(),
        format!("{err:?}"),
        err.www_authenticate(),
        err.public_message().to_owned(),
    ] {
        assert!(!text.contains(&token[..20]));
        assert!(!text.contains("p1"));
    }
}
