use super::*;
use store_redb::RedbStore;

fn store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("t.redb")).unwrap();
    (dir, store)
}

fn new_grant(patient: &str, client: &str) -> NewGrant {
    NewGrant {
        patient: Some(patient.into()),
        client_id: client.into(),
        app_name: "Health App".into(),
        app_attested: true,
        scope: "launch/patient openid fhirUser patient/ExplanationOfBenefit.rs".into(),
        data_types: vec![ResourceType::ExplanationOfBenefit],
        transaction_id: Some("txn-1".into()),
        lifetime: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn a_pending_grant_activates_once_for_its_member_and_app() {
    let (_dir, store) = store();
    let g = create_pending(&store, &new_grant("p1", "app-a"))
        .await
        .unwrap();
    assert_eq!(g.status, GrantStatus::Pending);
    assert_eq!(g.transaction_id.as_deref(), Some("txn-1"));
    assert!(!is_active(&store, &g.id).await.unwrap());
    assert!(matches!(
        activate(&store, &g.id, "app-b", "p1").await,
        Err(GrantError::WrongOwner)
    ));
    assert!(matches!(
        activate(&store, &g.id, "app-a", "p2").await,
        Err(GrantError::WrongOwner)
    ));
    let active = activate(&store, &g.id, "app-a", "p1").await.unwrap();
    assert_eq!(active.status, GrantStatus::Active);
    assert!(is_active(&store, &g.id).await.unwrap());
    assert!(matches!(
        activate(&store, &g.id, "app-a", "p1").await,
        Err(GrantError::WrongStatus(GrantStatus::Active))
    ));
    let found = active_for(&store, &g.id, "app-a", "p1").await.unwrap();
    assert_eq!(found.scope, g.scope);
    assert!(matches!(
        active_for(&store, &g.id, "app-b", "p1").await,
        Err(GrantError::WrongOwner)
    ));
}

#[tokio::test]
async fn revocation_is_final_and_idempotent() {
    let (_dir, store) = store();
    let g = create_pending(&store, &new_grant("p1", "app-a"))
        .await
        .unwrap();
    activate(&store, &g.id, "app-a", "p1").await.unwrap();
    let revoked = revoke(&store, &g.id, "member").await.unwrap().unwrap();
    assert_eq!(revoked.status, GrantStatus::Inactive);
    assert!(!is_active(&store, &g.id).await.unwrap());
    assert!(revoke(&store, &g.id, "member").await.unwrap().is_some());
    assert!(matches!(
        activate(&store, &g.id, "app-a", "p1").await,
        Err(GrantError::WrongStatus(GrantStatus::Inactive))
    ));
    assert!(
        revoke(&store, "no-such-grant", "member")
            .await
            .unwrap()
            .is_none()
    );
    assert!(revoke(&store, "bad/id", "member").await.unwrap().is_none());
}

#[tokio::test]
async fn denials_are_recorded_and_listed_per_member_only() {
    let (_dir, store) = store();
    let denied = record_rejected(&store, &new_grant("p1", "app-a"))
        .await
        .unwrap();
    assert_eq!(denied.status, GrantStatus::Rejected);
    create_pending(&store, &new_grant("p2", "app-a"))
        .await
        .unwrap();
    let mine = list_for_patient(&store, "p1").await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, denied.id);
    let record = store
        .get(ResourceType::Consent, &denied.id)
        .await
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_str(&record.body).unwrap();
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["provision"]["type"], "deny");
    assert_eq!(body["patient"]["reference"], "Patient/p1");
    assert_eq!(record.index.compartment.as_deref(), Some("p1"));
}

#[tokio::test]
async fn an_expired_grant_is_not_usable() {
    let (_dir, store) = store();
    let mut n = new_grant("p1", "app-a");
    n.lifetime = Duration::from_secs(0);
    let g = create_pending(&store, &n).await.unwrap();
    assert!(matches!(
        activate(&store, &g.id, "app-a", "p1").await,
        Err(GrantError::Expired)
    ));
    assert!(!is_active(&store, &g.id).await.unwrap());
}

#[tokio::test]
async fn a_grant_made_before_the_member_is_known_is_bound_at_activation() {
    let (_dir, store) = store();
    let mut n = new_grant("p1", "app-a");
    n.patient = None;
    let g = create_pending(&store, &n).await.unwrap();
    assert_eq!(g.patient, None);
    assert!(matches!(
        activate(&store, &g.id, "app-b", "p1").await,
        Err(GrantError::WrongOwner)
    ));
    let active = activate(&store, &g.id, "app-a", "p7").await.unwrap();
    assert_eq!(active.patient.as_deref(), Some("p7"));
    assert_eq!(list_for_patient(&store, "p7").await.unwrap().len(), 1);
    assert!(active_for(&store, &g.id, "app-a", "p7").await.is_ok());
    assert!(matches!(
        active_for(&store, &g.id, "app-a", "p1").await,
        Err(GrantError::WrongOwner)
    ));
}
