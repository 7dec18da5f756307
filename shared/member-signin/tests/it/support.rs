//! Test doubles for the trigger ports, and the embedded store for counters and codes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use member_signin::{
    ActiveGrant, AppDisplay, CodeSender, GrantGate, MemberDirectory, MemberFacts, PortError,
    SignInSecret, TriggerConfig, TriggerPorts,
};
use store_redb::RedbStore;

/// The secret the fixtures' `as_proof` values were made with.
pub const SECRET: &[u8] = b"local-test-sign-in-secret-000000";
/// The fixtures' app client, transaction and member.
pub const CLIENT: &str = "3n4b5urk1ft4fl3mg5e62d9ado";
pub const TXN: &str = "txn-7f3c2a9e";
pub const PATIENT: &str = "patient-m001";
pub const EMAIL: &str = "maria.garcia.m001@example.com";
pub const USER: &str = "8d1e6a4c-2b7f-4e0a-9c3d-5f6a7b8c9d0e";

pub type Ports = TriggerPorts<Members, RedbStore, RecordingSender, MemoryGrants>;

pub fn secret() -> SignInSecret {
    SignInSecret::new(SECRET).unwrap_or_else(|_| unreachable!("the test secret is 32 bytes"))
}

/// Ports over a fresh store in `dir`, knowing the fixture member and app.
pub fn ports(dir: &tempfile::TempDir) -> Ports {
    let store = RedbStore::open(dir.path().join("store.redb"))
        .unwrap_or_else(|e| panic!("open store: {e}"));
    TriggerPorts {
        members: Arc::new(Members::with_fixture_member()),
        kv: Arc::new(store),
        sender: Arc::new(RecordingSender::default()),
        grants: Arc::new(MemoryGrants::with_fixture_app()),
        config: TriggerConfig::new(secret()),
    }
}

#[derive(Default)]
pub struct Members(pub HashMap<String, MemberFacts>);

impl Members {
    pub fn with_fixture_member() -> Self {
        let mut members = Members::default();
        members.0.insert(PATIENT.into(), fixture_facts());
        members
    }
}

pub fn fixture_facts() -> MemberFacts {
    MemberFacts {
        birth_date: Some("1984-03-07".into()),
        member_ids: vec!["DH000112345".into()],
        postal_codes: vec!["43215".into()],
        email: Some(EMAIL.into()),
    }
}

impl MemberDirectory for Members {
    async fn facts(&self, patient_id: &str) -> Result<Option<MemberFacts>, PortError> {
        Ok(self.0.get(patient_id).cloned())
    }
}

/// Keeps every code "sent", newest last.
#[derive(Default)]
pub struct RecordingSender(pub Mutex<Vec<(String, String)>>);

impl RecordingSender {
    pub fn last_code(&self) -> Option<String> {
        self.0.lock().ok()?.last().map(|(_, code)| code.clone())
    }
    pub fn count(&self) -> usize {
        self.0.lock().map(|s| s.len()).unwrap_or_default()
    }
}

impl CodeSender for RecordingSender {
    async fn send(&self, email: &str, code: &str) -> Result<(), PortError> {
        self.0
            .lock()
            .map_err(|_| PortError("poisoned".into()))?
            .push((email.into(), code.into()));
        Ok(())
    }
}

/// Grants as the authorization server would keep them: pending until Verify activates.
#[derive(Default)]
pub struct MemoryGrants {
    pub pending: Mutex<HashMap<String, (String, String, String)>>,
    pub active: Mutex<HashMap<(String, String), ActiveGrant>>,
    pub apps: HashMap<String, AppDisplay>,
}

impl MemoryGrants {
    pub fn with_fixture_app() -> Self {
        let mut grants = MemoryGrants::default();
        grants.apps.insert(
            CLIENT.into(),
            AppDisplay {
                name: "Demo Health App".into(),
                attested: true,
                privacy_policy_url: Some("https://app.example.org/privacy".into()),
            },
        );
        grants
    }

    /// What the authorization server does when the member approves: a pending grant.
    pub fn record_pending(&self, grant_id: &str, client: &str, patient: &str, txn: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(grant_id.into(), (client.into(), patient.into(), txn.into()));
        }
    }

    pub fn activate_now(&self, client: &str, patient: &str, grant_id: &str) {
        if let Ok(mut active) = self.active.lock() {
            active.insert(
                (client.into(), patient.into()),
                ActiveGrant {
                    grant_id: grant_id.into(),
                    scope: "patient/*.rs".into(),
                },
            );
        }
    }

    pub fn revoke(&self, client: &str, patient: &str) {
        if let Ok(mut active) = self.active.lock() {
            active.remove(&(client.to_owned(), patient.to_owned()));
        }
    }
}

impl GrantGate for MemoryGrants {
    async fn activate(
        &self,
        grant_id: &str,
        client_id: &str,
        patient: &str,
        transaction_id: &str,
    ) -> Result<bool, PortError> {
        let taken = self
            .pending
            .lock()
            .map_err(|_| PortError("poisoned".into()))?
            .remove(grant_id);
        let matches =
            taken.is_some_and(|(c, p, t)| c == client_id && p == patient && t == transaction_id);
        if matches {
            self.activate_now(client_id, patient, grant_id);
        }
        Ok(matches)
    }

    async fn active_grant(
        &self,
        client_id: &str,
        patient: &str,
    ) -> Result<Option<ActiveGrant>, PortError> {
        let active = self
            .active
            .lock()
            .map_err(|_| PortError("poisoned".into()))?;
        Ok(active
            .get(&(client_id.to_owned(), patient.to_owned()))
            .cloned())
    }

    async fn app_display(&self, client_id: &str) -> Result<Option<AppDisplay>, PortError> {
        Ok(self.apps.get(client_id).cloned())
    }
}

/// A fixture from `events/` as JSON.
pub fn fixture(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture is not JSON: {e}"))
}
