//! Key rollover against moto's Secrets Manager (`scripts/with-moto cargo test -p
//! secrets-manager`): what a function sees when an operator rotates a secret with
//! `PutSecretValue` (the procedure in SECURITY.md).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_secretsmanager::Client;
use member_signin::SignInSecret;
use secrets::SecretSource;
use secrets_manager::SecretsManagerSource;
use smart_auth::{Cursor, CursorBinding, CursorError, CursorSealer};

const V1: &str = "version-one-0123456789abcdef0123456789abcdef";
const V2: &str = "version-two-0123456789abcdef0123456789abcdef";
const V3: &str = "version-three-0123456789abcdef0123456789abcd";

async fn client() -> Option<Client> {
    let config = aws_test_config::local_sdk_config().await?;
    Some(Client::new(&config))
}

async fn create(client: &Client, name: &str, value: &str) -> String {
    let out = client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_secret: {:?}", e.into_service_error()));
    out.arn.unwrap_or_else(|| panic!("no arn"))
}

/// An operator's rotation: the new value becomes AWSCURRENT, the old one AWSPREVIOUS.
async fn rotate(client: &Client, arn: &str, value: &str) {
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_secret_value: {:?}", e.into_service_error()));
}

fn binding() -> CursorBinding {
    CursorBinding {
        client_id: "app-a".into(),
        patient: "p1".into(),
        resource_type: "ExplanationOfBenefit".into(),
        query: "_count=10".into(),
    }
}

fn cursor(position: &str) -> Cursor {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    Cursor {
        binding: binding(),
        position: position.into(),
        expires_at: now + 600,
    }
}

#[tokio::test]
async fn cursors_sealed_before_a_rotation_open_until_the_rotation_after() {
    let Some(client) = client().await else {
        return;
    };
    let arn = create(&client, &format!("cursor-{}", std::process::id()), V1).await;
    let source = SecretsManagerSource::new(client.clone(), &arn);
    let ring = |source: &SecretsManagerSource| {
        let source = source.clone();
        async move { source.key_ring().await.unwrap_or_else(|e| panic!("{e}")) }
    };

    let never_rotated = ring(&source).await;
    assert_eq!(never_rotated.keys().count(), 1, "no AWSPREVIOUS yet");
    let sealer = CursorSealer::from_ring(&never_rotated).unwrap_or_else(|e| panic!("{e}"));
    let sealed_v1 = sealer.seal(&cursor("v1")).unwrap_or_else(|e| panic!("{e}"));

    rotate(&client, &arn, V2).await;
    let after_first = ring(&source).await;
    assert_eq!(after_first.current().as_bytes(), V2.as_bytes());
    sealer
        .install(&after_first)
        .unwrap_or_else(|e| panic!("{e}"));
    let now = SystemTime::now();
    assert_eq!(
        sealer.open(&sealed_v1, &binding(), now).map(|c| c.position),
        Ok("v1".to_owned()),
        "a cursor sealed with v1 still opens after the rotation"
    );
    let sealed_v2 = sealer.seal(&cursor("v2")).unwrap_or_else(|e| panic!("{e}"));
    let v2_only = CursorSealer::from_secret(V2.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        v2_only.open(&sealed_v2, &binding(), now).is_ok(),
        "new cursors are sealed with v2"
    );

    rotate(&client, &arn, V3).await;
    sealer
        .install(&ring(&source).await)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sealer.open(&sealed_v1, &binding(), now),
        Err(CursorError::Tampered),
        "two rotations later v1 is gone"
    );
    assert!(sealer.open(&sealed_v2, &binding(), now).is_ok());
}

#[tokio::test]
async fn sign_in_proofs_follow_the_same_rollover() {
    let Some(client) = client().await else {
        return;
    };
    let arn = create(&client, &format!("signin-{}", std::process::id()), V1).await;
    let source = SecretsManagerSource::new(client.clone(), &arn);
    let load = || async { source.key_ring().await.unwrap_or_else(|e| panic!("{e}")) };

    let secret = SignInSecret::from_ring(&load().await).unwrap_or_else(|e| panic!("{e}"));
    let proof_v1 = secret.proof("client", "txn");
    let code_v1 = secret.code_hash("member", "code-id", "123456");

    rotate(&client, &arn, V2).await;
    secret
        .install(&load().await)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(secret.verify_proof("client", "txn", &proof_v1));
    assert!(secret.code_matches("member", "code-id", "123456", &code_v1));

    rotate(&client, &arn, V3).await;
    secret
        .install(&load().await)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!secret.verify_proof("client", "txn", &proof_v1));
    assert!(!secret.code_matches("member", "code-id", "123456", &code_v1));
}

#[tokio::test]
async fn a_missing_secret_is_an_error_not_an_empty_ring() {
    let Some(client) = client().await else {
        return;
    };
    let source = SecretsManagerSource::new(client, "no-such-secret");
    assert!(source.key_ring().await.is_err());
}

/// Whether a guard loaded now (a cold start) admits a request carrying `secret`.
async fn edge_admits(source: &SecretsManagerSource, secret: &str) -> bool {
    let guard = lambda_adapter::EdgeGuard::load(Some(source.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut headers = http::HeaderMap::new();
    headers.insert(
        lambda_adapter::edge::ORIGIN_VERIFY_HEADER,
        http::HeaderValue::from_str(secret).unwrap_or_else(|e| panic!("{e}")),
    );
    headers.insert(
        lambda_adapter::edge::FORWARDED_HOST_HEADER,
        http::HeaderValue::from_static("d111.cloudfront.net"),
    );
    guard
        .admit(&mut headers, &mut http::Extensions::new())
        .await
        .is_ok()
}

#[tokio::test]
async fn the_edge_secret_rotates_without_refusing_cloudfronts_requests() {
    let Some(client) = client().await else {
        return;
    };
    let arn = create(&client, &format!("edge-{}", std::process::id()), V1).await;
    let source = SecretsManagerSource::new(client.clone(), &arn);
    assert!(edge_admits(&source, V1).await);
    assert!(!edge_admits(&source, V2).await, "not a value of the secret");

    // The operator rotates; CloudFront sends V1 until the stack update gives it V2.
    rotate(&client, &arn, V2).await;
    assert!(
        edge_admits(&source, V1).await,
        "CloudFront's old value still passes"
    );
    assert!(edge_admits(&source, V2).await);

    rotate(&client, &arn, V3).await;
    assert!(
        !edge_admits(&source, V1).await,
        "two rotations later it is refused"
    );
}
