//! The grant gate over `member-consent`: activation is bound to app, patient and
//! transaction; Pre Token Generation finds only a usable grant of this app.

use std::sync::Arc;
use std::time::Duration;

use member_consent::{NewGrant, grants};
use member_signin::{
    AppCatalog, AppDisplay, CognitoClientLink, ConsentGrants, GrantGate, KvAppCatalog, PortError,
    link_cognito_client, registered_cognito_client,
};
use store_redb::RedbStore;

struct NoApps;

impl AppCatalog for NoApps {
    async fn app_display(&self, _client_id: &str) -> Result<Option<AppDisplay>, PortError> {
        Ok(None)
    }
}

fn new_grant(transaction: &str) -> NewGrant {
    NewGrant {
        patient: Some("patient-m001".into()),
        client_id: "app-a".into(),
        app_name: "App A".into(),
        app_attested: false,
        scope: "patient/Coverage.rs".into(),
        data_types: vec![fhir::ResourceType::Coverage],
        transaction_id: Some(transaction.into()),
        lifetime: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn activation_is_bound_to_app_patient_and_transaction() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        Arc::new(RedbStore::open(dir.path().join("s.redb")).unwrap_or_else(|e| panic!("{e}")));
    let gate = ConsentGrants::new(Arc::clone(&store), Arc::new(NoApps));
    let grant = grants::create_pending(store.as_ref(), &new_grant("txn-1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gate.active_grant("app-a", "patient-m001").await.ok(),
        Some(None)
    );
    assert_eq!(
        gate.activate(&grant.id, "app-a", "patient-m001", "txn-2")
            .await
            .ok(),
        Some(false)
    );
    assert_eq!(
        gate.activate(&grant.id, "app-b", "patient-m001", "txn-1")
            .await
            .ok(),
        Some(false)
    );
    assert_eq!(
        gate.activate(&grant.id, "app-a", "patient-m002", "txn-1")
            .await
            .ok(),
        Some(false)
    );
    assert_eq!(
        gate.activate("no-such-grant", "app-a", "patient-m001", "txn-1")
            .await
            .ok(),
        Some(false)
    );
    assert_eq!(
        gate.activate(&grant.id, "app-a", "patient-m001", "txn-1")
            .await
            .ok(),
        Some(true)
    );
    assert_eq!(
        gate.activate(&grant.id, "app-a", "patient-m001", "txn-1")
            .await
            .ok(),
        Some(false),
        "once only"
    );
    let active = gate
        .active_grant("app-a", "patient-m001")
        .await
        .ok()
        .flatten();
    assert_eq!(
        active.map(|g| (g.grant_id, g.scope)),
        Some((grant.id.clone(), "patient/Coverage.rs".into()))
    );
    assert_eq!(
        gate.active_grant("app-b", "patient-m001").await.ok(),
        Some(None)
    );
    grants::revoke(store.as_ref(), &grant.id, "member")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gate.active_grant("app-a", "patient-m001").await.ok(),
        Some(None)
    );
}

/// On AWS the triggers see Cognito's app client id; the link records map it to our
/// app, and nothing else does: not our own id, not an unlinked Cognito client.
#[tokio::test]
async fn cognito_client_ids_resolve_to_the_linked_app_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        Arc::new(RedbStore::open(dir.path().join("s.redb")).unwrap_or_else(|e| panic!("{e}")));
    let link = CognitoClientLink {
        app_id: "app-a".into(),
        client_secret: "cognito-secret".into(),
    };
    link_cognito_client(store.as_ref(), "4example1cognito2client", &link)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let app = serde_json::json!({
        "client_id": "app-a", "name": "App A", "redirect_uris": ["https://a.example/cb"],
        "confidential": false, "attested": true, "enabled": true, "scope": "patient/*.rs",
        "cognito_client_id": "4example1cognito2client",
    });
    fhir_store::KeyValueStore::put(store.as_ref(), "app", "app-a", &app, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        registered_cognito_client(store.as_ref(), "app-a")
            .await
            .ok(),
        Some(Some("4example1cognito2client".to_owned()))
    );
    assert!(
        !format!("{link:?}").contains("cognito-secret"),
        "Debug hides the secret"
    );

    let gate = ConsentGrants::new(
        Arc::clone(&store),
        Arc::new(KvAppCatalog::for_cognito(Arc::clone(&store))),
    );
    let display = gate
        .app_display("4example1cognito2client")
        .await
        .ok()
        .flatten();
    assert_eq!(display.map(|d| d.name), Some("App A".to_owned()));
    assert_eq!(gate.app_display("app-a").await.ok(), Some(None));

    let grant = grants::create_pending(store.as_ref(), &new_grant("txn-1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gate.activate(&grant.id, "app-a", "patient-m001", "txn-1")
            .await
            .ok(),
        Some(false),
        "our own id is not a Cognito client"
    );
    assert_eq!(
        gate.activate(&grant.id, "unlinked-client", "patient-m001", "txn-1")
            .await
            .ok(),
        Some(false)
    );
    assert_eq!(
        gate.activate(
            &grant.id,
            "4example1cognito2client",
            "patient-m001",
            "txn-1"
        )
        .await
        .ok(),
        Some(true)
    );
    let active = gate
        .active_grant("4example1cognito2client", "patient-m001")
        .await
        .ok()
        .flatten();
    assert_eq!(active.map(|g| g.grant_id), Some(grant.id));
    assert_eq!(
        gate.active_grant("app-a", "patient-m001").await.ok(),
        Some(None)
    );
}
