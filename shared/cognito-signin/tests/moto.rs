//! The Cognito API calls moto implements, against moto (`scripts/with-moto cargo test
//! -p cognito-signin`): a user pool shaped like template.yaml's, an app client, member
//! provisioning and look-up. Needs `AWS_ENDPOINT_URL` (see `aws-test-config`).
//!
//! Not here, because moto runs no Lambda triggers and refuses `CUSTOM_AUTH` in
//! `AdminInitiateAuth`: the challenge flow. The trigger tests (`member-signin/tests/
//! triggers.rs`) and the local stand-in (`member-signin/tests/local_signin.rs`) cover it.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, AliasAttributeType, AttributeDataType, SchemaAttributeType,
};
use cognito_signin::{AppClientSettings, create_app_client, find_member, provision_member};

async fn client() -> Option<Client> {
    let config = aws_test_config::local_sdk_config().await?;
    Some(Client::new(&config))
}

async fn member_pool(client: &Client) -> String {
    let patient_id = SchemaAttributeType::builder()
        .name("patient_id")
        .attribute_data_type(AttributeDataType::String)
        .mutable(false)
        .build();
    let out = client
        .create_user_pool()
        .pool_name(format!("members-{}", std::process::id()))
        .alias_attributes(AliasAttributeType::Email)
        .schema(patient_id)
        .admin_create_user_config(
            AdminCreateUserConfigType::builder()
                .allow_admin_create_user_only(true)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_user_pool: {:?}", e.into_service_error()));
    out.user_pool
        .and_then(|p| p.id)
        .unwrap_or_else(|| panic!("no pool id"))
}

#[tokio::test]
async fn pool_client_provisioning_and_lookup_against_moto() {
    let Some(client) = client().await else {
        return;
    };
    let pool = member_pool(&client).await;

    let app = create_app_client(
        &client,
        &pool,
        "Demo Health App",
        &AppClientSettings::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("create_app_client: {e}"));
    assert!(
        !app.client_id.is_empty() && !app.client_secret.is_empty(),
        "the app client has a secret"
    );
    let described = client
        .describe_user_pool_client()
        .user_pool_id(&pool)
        .client_id(&app.client_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe: {:?}", e.into_service_error()));
    let flows = described
        .user_pool_client
        .map(|c| c.explicit_auth_flows.unwrap_or_default())
        .unwrap_or_default();
    let flows: Vec<&str> = flows.iter().map(|f| f.as_str()).collect();
    assert_eq!(
        flows,
        vec!["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        "no password or SRP flows"
    );

    let username = provision_member(
        &client,
        &pool,
        " Maria.Garcia.M001@Example.com ",
        "patient-m001",
    )
    .await
    .unwrap_or_else(|e| panic!("provision_member: {e}"));
    assert_eq!(username.len(), 36, "an opaque UUID, not the email");
    assert!(!username.contains('@'));

    let found = find_member(&client, &pool, "maria.garcia.m001@example.com")
        .await
        .unwrap_or_else(|e| panic!("find_member: {e}"));
    assert_eq!(found, Some((username.clone(), "patient-m001".to_owned())));
    let missing = find_member(&client, &pool, "nobody@example.com")
        .await
        .unwrap_or_else(|e| panic!("find_member: {e}"));
    assert_eq!(missing, None);
    assert!(
        find_member(&client, &pool, "x\" or email = \"y")
            .await
            .is_err(),
        "filter injection is refused"
    );

    let user = client
        .admin_get_user()
        .user_pool_id(&pool)
        .username(&username)
        .send()
        .await
        .unwrap_or_else(|e| panic!("admin_get_user: {:?}", e.into_service_error()));
    let status = user.user_status.map(|s| s.as_str().to_owned());
    assert_eq!(
        status.as_deref(),
        Some("CONFIRMED"),
        "confirmed with a password nobody knows"
    );
}

/// Registration on AWS: the app's Cognito client is created and linked, the
/// authorization server finds it by our SMART client id, and a disabled app or an app
/// record pointing at another app's client finds nothing.
#[tokio::test]
async fn linked_app_clients_resolve_by_our_client_id_against_moto() {
    use cognito_signin::{AppClients, KvAppClients, create_linked_app_client};
    use fhir_store::KeyValueStore;
    use member_signin::cognito_client_link;

    let Some(client) = client().await else {
        return;
    };
    let pool = member_pool(&client).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = std::sync::Arc::new(
        store_redb::RedbStore::open(dir.path().join("kv.redb")).unwrap_or_else(|e| panic!("{e}")),
    );
    let kv = store.as_ref();
    let settings = AppClientSettings::default();
    let cognito_a = create_linked_app_client(&client, &pool, kv, "app-aaa", &settings)
        .await
        .unwrap_or_else(|e| panic!("create_linked_app_client: {e}"));
    let cognito_b = create_linked_app_client(&client, &pool, kv, "app-bbb", &settings)
        .await
        .unwrap_or_else(|e| panic!("create_linked_app_client: {e}"));
    assert_ne!(cognito_a, "app-aaa", "Cognito chooses its own ids");
    let link = cognito_client_link(kv, &cognito_a)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no link"));
    assert_eq!(link.app_id, "app-aaa");

    let app = |id: &str, cognito: &str, enabled: bool| {
        serde_json::json!({ "client_id": id, "name": id, "redirect_uris": [],
            "confidential": false, "attested": false, "enabled": enabled,
            "scope": "patient/*.rs", "cognito_client_id": cognito })
    };
    let put = |id: &'static str, value: serde_json::Value| async move {
        kv.put("app", id, &value, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    };
    put("app-aaa", app("app-aaa", &cognito_a, true)).await;
    put("app-bbb", app("app-bbb", &cognito_b, false)).await;
    put("app-ccc", app("app-ccc", &cognito_a, true)).await;

    let clients = KvAppClients::new(std::sync::Arc::clone(&store));
    let found = clients
        .credentials("app-aaa")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("app-aaa has a client"));
    assert_eq!(found.client_id, cognito_a);
    assert_eq!(found.client_secret, link.client_secret);
    assert!(
        clients
            .credentials("app-bbb")
            .await
            .ok()
            .flatten()
            .is_none(),
        "disabled"
    );
    assert!(
        clients
            .credentials("app-ccc")
            .await
            .ok()
            .flatten()
            .is_none(),
        "another app's client is not borrowed"
    );
    assert!(
        clients
            .credentials("app-none")
            .await
            .ok()
            .flatten()
            .is_none()
    );
}
