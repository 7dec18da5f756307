//! Local mode as `patient-access serve` runs it: demo members in the embedded store,
//! enrolled from their Patient's email, signing in with the facts on their records,
//! consenting through a `member-consent` grant for a registered app.

use std::sync::Arc;
use std::time::Duration;

use demo_data::{DemoConfig, DemoMember};
use fhir_store::{KeyValueStore, ResourceStore, ResourceWrite, WriteCondition};
use member_consent::{NewGrant, grants};
use member_signin::{
    Answer, Challenge, CodeSender, LocalSignIn, PortError, SignIn, SignInContext, SignInSecret,
    Step, TriggerPorts, local_ports,
};
use serde_json::json;
use store_redb::RedbStore;

const APP: &str = "app-demo";

async fn load(store: &RedbStore) -> Vec<DemoMember> {
    let data = demo_data::generate(&DemoConfig {
        members: 2,
        eobs_per_member: 1,
        seed: 7,
    });
    for (resource_type, id, resource) in data.resources {
        let write = ResourceWrite::indexed(resource_type, id, resource, WriteCondition::Always);
        ResourceStore::put(store, write)
            .await
            .unwrap_or_else(|e| panic!("load: {e}"));
    }
    data.members
}

fn challenge(step: &Step) -> (member_signin::SignInSession, Challenge) {
    match step {
        Step::Challenge { session, challenge } => (session.clone(), challenge.clone()),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[tokio::test]
async fn a_demo_member_signs_in_with_the_facts_on_their_records() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        Arc::new(RedbStore::open(dir.path().join("s.redb")).unwrap_or_else(|e| panic!("{e}")));
    let members = load(&store).await;
    let app = json!({ "client_id": APP, "name": "Demo App", "attested": true, "enabled": true, "privacy_policy": "https://demo.example.org/privacy" });
    KeyValueStore::put(store.as_ref(), "app", APP, &app, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let secret = SignInSecret::new(&[9u8; 32]).unwrap_or_else(|e| panic!("{e}"));
    // Local mode's ports, with the console sender swapped for one the test can read.
    let ports = local_ports(
        Arc::clone(&store),
        secret,
        Some("http://localhost:8080".into()),
    );
    let sender = Arc::new(Recording::default());
    let local = LocalSignIn::new(TriggerPorts {
        members: ports.members,
        kv: ports.kv,
        sender: Arc::clone(&sender),
        grants: ports.grants,
        config: ports.config,
    });
    let ids: Vec<String> = members.iter().map(|m| m.patient_id.clone()).collect();
    assert_eq!(local.provision_patients(&ids).await.ok(), Some(2));

    let member = &members[1];
    let context = SignInContext {
        client_id: APP.into(),
        transaction_id: "txn-demo".into(),
    };
    let first = local
        .start(&member.email, &context)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (session, _) = challenge(&first);
    let answer = Answer::Demographics {
        birth_date: member.birth_date.clone(),
        member_id: member.member_id.to_lowercase(),
        postal_code: format!("{}-0001", member.postal_code),
    };
    let second = local
        .answer(&session, &answer, &context)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (session, email_challenge) = challenge(&second);
    assert!(matches!(email_challenge, Challenge::EmailCode { .. }));
    let code = sender
        .0
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .unwrap_or_default();
    let third = local
        .answer(&session, &Answer::EmailCode(code), &context)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (session, consent) = challenge(&third);
    assert_eq!(consent, Challenge::Consent);

    // The authorization server records what the member approved, for this transaction.
    let new = NewGrant {
        patient: None,
        client_id: APP.into(),
        app_name: "Demo App".into(),
        app_attested: true,
        scope: "patient/*.rs".into(),
        data_types: vec![fhir::ResourceType::Coverage],
        transaction_id: Some("txn-demo".into()),
        lifetime: Duration::from_secs(3600),
    };
    let grant = grants::create_pending(store.as_ref(), &new)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let done = local
        .answer(
            &session,
            &Answer::Consent {
                grant_id: grant.id.clone(),
            },
            &context,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match done {
        Step::SignedIn {
            patient, grant_id, ..
        } => assert_eq!((patient, grant_id), (member.patient_id.clone(), grant.id)),
        other => panic!("expected SignedIn, got {other:?}"),
    }
}

#[derive(Default)]
struct Recording(std::sync::Mutex<Option<String>>);

impl CodeSender for Recording {
    async fn send(&self, _email: &str, code: &str) -> Result<(), PortError> {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(code.to_owned());
        }
        Ok(())
    }
}
