//! Registration on AWS against moto's Cognito (`scripts/with-moto cargo test -p
//! patient-access-admin`), over an embedded store standing in for the table, and the
//! Provider Access opt-out against moto's DynamoDB. Needs `AWS_ENDPOINT_URL` (see
//! `aws-test-config`).

use cognito_signin::{AppClients, CognitoClient, KvAppClients};
use member_consent::Sharing;
use member_signin::cognito_client_link;
use patient_access_admin::{Deployment, set_sharing};
use smart_server::{NewApp, apps};

/// A fresh user pool in moto, named for the test.
async fn user_pool(cognito: &CognitoClient, name: &str) -> String {
    cognito
        .create_user_pool()
        .pool_name(format!("{name}-{}", std::process::id()))
        .send()
        .await
        .ok()
        .and_then(|out| out.user_pool)
        .and_then(|pool| pool.id)
        .unwrap_or_else(|| panic!("create_user_pool"))
}

#[tokio::test]
async fn a_registered_app_and_the_portal_get_linked_cognito_clients() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let cognito = CognitoClient::new(&aws);
    let pool = user_pool(&cognito, "admin").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = std::sync::Arc::new(
        store_redb::RedbStore::open(dir.path().join("kv.redb")).unwrap_or_else(|e| panic!("{e}")),
    );
    let deployment = Deployment {
        cognito: &cognito,
        user_pool_id: &pool,
        kv: store.as_ref(),
    };
    let new = NewApp {
        name: "Demo Health App".into(),
        description: String::new(),
        redirect_uris: vec!["https://app.example/callback".into()],
        confidential: true,
        privacy_policy: None,
        attested: true,
    };
    let registered = deployment
        .register_app(&new)
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    let app_id = registered.app.client_id.clone();
    assert!(app_id.starts_with("app-"));
    let cognito_id = registered
        .app
        .cognito_client_id
        .clone()
        .unwrap_or_else(|| panic!("no Cognito client"));
    let stored = apps::get(store.as_ref(), &app_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.as_ref(), Some(&registered.app));
    let link = cognito_client_link(store.as_ref(), &cognito_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no link"));
    assert_eq!(link.app_id, app_id);

    let credentials = KvAppClients::new(std::sync::Arc::clone(&store))
        .credentials(&app_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the server finds the client"));
    assert_eq!(credentials.client_id, cognito_id);

    let portal = apps::get(store.as_ref(), apps::portal_client_id())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .and_then(|app| app.cognito_client_id)
        .unwrap_or_else(|| panic!("the portal has a Cognito client"));
    // A second registration keeps the portal's client.
    let _ = deployment
        .register_app(&new)
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    let portal_again = apps::get(store.as_ref(), apps::portal_client_id())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .and_then(|app| app.cognito_client_id);
    assert_eq!(portal_again, Some(portal));
}

/// Issue #14 finding 4: `apps disable` ends the app's grants and deletes its Cognito
/// app client, so nothing can drive a sign-in or a refresh with it again.
#[tokio::test]
async fn disabling_an_app_deletes_its_cognito_client() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let cognito = CognitoClient::new(&aws);
    let pool = user_pool(&cognito, "disable").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        store_redb::RedbStore::open(dir.path().join("kv.redb")).unwrap_or_else(|e| panic!("{e}"));
    let deployment = Deployment {
        cognito: &cognito,
        user_pool_id: &pool,
        kv: &store,
    };
    let registered = deployment
        .register_app(&NewApp {
            name: "Soon Disabled".into(),
            description: String::new(),
            redirect_uris: vec!["https://app.example/callback".into()],
            confidential: false,
            privacy_policy: None,
            attested: false,
        })
        .await
        .unwrap_or_else(|e| panic!("register: {e}"));
    let app_id = registered.app.client_id;
    let cognito_id = registered
        .app
        .cognito_client_id
        .unwrap_or_else(|| panic!("no Cognito client"));
    let exists = |id: String| {
        let cognito = cognito.clone();
        let pool = pool.clone();
        async move {
            cognito
                .describe_user_pool_client()
                .user_pool_id(pool)
                .client_id(id)
                .send()
                .await
                .is_ok()
        }
    };
    assert!(exists(cognito_id.clone()).await);

    let deleted = deployment
        .disable_app(&app_id)
        .await
        .unwrap_or_else(|e| panic!("disable: {e}"));
    assert!(deleted, "the Cognito client was deleted");
    assert!(
        !exists(cognito_id).await,
        "Cognito no longer knows the client"
    );
    let stored = apps::get(&store, &app_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the record stays, disabled"));
    assert!(!stored.enabled);

    // Disabling again is harmless; an unknown app is an error.
    assert!(matches!(deployment.disable_app(&app_id).await, Ok(false)));
    assert!(deployment.disable_app("app-unknown").await.is_err());
}

#[tokio::test]
async fn the_plan_opts_a_member_out_of_provider_access_and_back_in_on_dynamodb() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let table = format!("admin-opt-out-{}", std::process::id());
    store_dynamodb::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("create table: {e}"));
    let store = store_dynamodb::DynamoStore::new(client.clone(), table.clone());
    let patient = "patient-999996666-DH000154930";
    let opted_out = || member_consent::provider_access::is_opted_out(&store, patient);

    assert!(!opted_out().await.unwrap_or_else(|e| panic!("{e}")));
    let changed = set_sharing(&store, Sharing::ProviderAccess, patient, false).await;
    assert!(changed.unwrap_or_else(|e| panic!("opt out: {e}")));
    assert!(opted_out().await.unwrap_or_else(|e| panic!("{e}")));
    // The same choice again writes no version.
    let again = set_sharing(&store, Sharing::ProviderAccess, patient, false).await;
    assert!(!again.unwrap_or_else(|e| panic!("opt out again: {e}")));
    let back_in = set_sharing(&store, Sharing::ProviderAccess, patient, true).await;
    assert!(back_in.unwrap_or_else(|e| panic!("opt in: {e}")));
    assert!(!opted_out().await.unwrap_or_else(|e| panic!("{e}")));
    // Not a Patient id: refused before anything is written.
    assert!(
        set_sharing(&store, Sharing::ProviderAccess, "../x", false)
            .await
            .is_err()
    );
    let _ = client.delete_table().table_name(&table).send().await;
}

#[tokio::test]
async fn the_plan_records_a_member_s_payer_to_payer_opt_in_from_enrollment_on_dynamodb() {
    let Some(aws) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let table = format!("admin-p2p-{}", std::process::id());
    store_dynamodb::create_table(&client, &table)
        .await
        .unwrap_or_else(|e| panic!("create table: {e}"));
    let store = store_dynamodb::DynamoStore::new(client.clone(), table.clone());
    let patient = "patient-999996666-DH000154930";
    let opted_in = || member_consent::payer_to_payer::is_opted_in(&store, patient);

    assert!(
        !opted_in().await.unwrap_or_else(|e| panic!("{e}")),
        "off until the member opts in"
    );
    let changed = set_sharing(&store, Sharing::PayerToPayer, patient, true).await;
    assert!(changed.unwrap_or_else(|e| panic!("opt in: {e}")));
    assert!(opted_in().await.unwrap_or_else(|e| panic!("{e}")));
    let again = set_sharing(&store, Sharing::PayerToPayer, patient, true).await;
    assert!(!again.unwrap_or_else(|e| panic!("opt in again: {e}")));
    let out = set_sharing(&store, Sharing::PayerToPayer, patient, false).await;
    assert!(out.unwrap_or_else(|e| panic!("opt out: {e}")));
    assert!(!opted_in().await.unwrap_or_else(|e| panic!("{e}")));
    assert!(
        !member_consent::provider_access::is_opted_out(&store, patient)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        "Provider Access is a separate choice"
    );
    let _ = client.delete_table().table_name(&table).send().await;
}
