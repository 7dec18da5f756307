//! The grant gate over `member-consent`: activation is bound to app, patient and
//! transaction; Pre Token Generation finds only a usable grant of this app.

use std::sync::Arc;
use std::time::Duration;

use member_consent::{NewGrant, grants};
use member_signin::{AppCatalog, AppDisplay, ConsentGrants, GrantGate, PortError};
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
