//! The signer against moto (`scripts/with-moto cargo test -p kms-signer`): an RSA_2048
//! SIGN_VERIFY key, its JWK from GetPublicKey, and a minted token that our own
//! verifier accepts with that JWK. Needs `AWS_ENDPOINT_URL` (see `aws-test-config`).

use std::sync::Arc;

use aws_sdk_kms::Client;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use kms_signer::{KmsSigner, KmsSignerError};
use smart_auth::{AccessClaims, StaticJwks, TokenSigner, TokenVerifier, VerifierConfig, mint_with};

const ISSUER: &str = "https://fhir.example.org/r4";

async fn client() -> Option<Client> {
    let config = aws_test_config::local_sdk_config().await?;
    Some(Client::new(&config))
}

async fn create_key(client: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    client
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_key: {:?}", e.into_service_error()))
        .key_metadata
        .map(|m| m.key_id)
        .unwrap_or_else(|| panic!("no key id"))
}

fn claims() -> AccessClaims {
    let mut claims = AccessClaims::for_member(
        "patient-m001",
        "app-1",
        "patient/*.rs",
        std::time::Duration::from_secs(3600),
    );
    claims.iss = ISSUER.to_owned();
    claims.aud = ISSUER.to_owned();
    claims.jti = Some("jti-1".to_owned());
    claims
}

#[tokio::test]
async fn a_token_signed_in_kms_verifies_with_the_published_jwk() {
    let Some(client) = client().await else {
        return;
    };
    let key = create_key(&client, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let signer = KmsSigner::connect(client.clone(), &key)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let jwks = signer.jwks();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        jwks.keys[0].common.key_id.as_deref(),
        Some(signer.key_id()),
        "the token's kid is the published key's"
    );

    let token = mint_with(&signer, &claims())
        .await
        .unwrap_or_else(|e| panic!("mint: {e}"));
    let verifier = TokenVerifier::new(VerifierConfig::new(
        ISSUER.to_owned(),
        ISSUER.to_owned(),
        Arc::new(StaticJwks::new(jwks)),
    ));
    let principal = verifier
        .verify(Some(&format!("Bearer {token}")))
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!(principal.patient, "patient-m001");
    assert_eq!(principal.client_id, "app-1");

    // A second cold start on the same key publishes the same kid.
    let again = KmsSigner::connect(client.clone(), &key)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    assert_eq!(again.key_id(), signer.key_id());

    // A token signed by another KMS key does not verify against this one's JWK.
    let other_key = create_key(&client, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let other = KmsSigner::connect(client.clone(), &other_key)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let forged = mint_with(&other, &claims())
        .await
        .unwrap_or_else(|e| panic!("mint: {e}"));
    assert!(
        verifier
            .verify(Some(&format!("Bearer {forged}")))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn keys_that_cannot_sign_rs256_are_refused_at_start() {
    let Some(client) = client().await else {
        return;
    };
    let encrypt = create_key(&client, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    assert!(matches!(
        KmsSigner::connect(client.clone(), &encrypt).await,
        Err(KmsSignerError::WrongKeyKind)
    ));
    assert!(matches!(
        KmsSigner::connect(client.clone(), "alias/does-not-exist").await,
        Err(KmsSignerError::GetPublicKey(_))
    ));
}
