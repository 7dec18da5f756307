//! Test doubles shared by the test modules.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use fhir::ResourceType;
use fhir_store::kv::{StoredVersion, WriteWhen};
use fhir_store::{
    KeyPage, KeyValueStore, KvEntry, ListPage, ListQuery, ResourceRecord, ResourceStore,
    ResourceWrite, StoreError, StoreResult,
};
use serde_json::Value;

/// A store that keeps no resource (reads find nothing, writes are dropped) and a
/// ledger in a map (a handful of entries).
/// With `fail_after = Some(n)`, every resource write after the first `n` fails
/// with a backend error (throttling that outlasted the retries).
#[derive(Default)]
pub struct NullStore {
    ledger: Mutex<HashMap<String, KvEntry>>,
    fail_after: Option<usize>,
    pub writes: AtomicUsize,
}

impl NullStore {
    /// A store whose resource writes fail after the first `n`.
    pub fn failing_after(n: usize) -> Self {
        NullStore {
            fail_after: Some(n),
            ..NullStore::default()
        }
    }

    /// How many ledger records there are.
    pub fn ledger_len(&self) -> usize {
        self.ledger().len()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, HashMap<String, KvEntry>> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ResourceStore for NullStore {
    async fn put(&self, write: ResourceWrite) -> StoreResult<ResourceRecord> {
        let done = self.writes.fetch_add(1, Ordering::Relaxed);
        if self.fail_after.is_some_and(|n| done >= n) {
            return Err(StoreError::Backend("throttled (test)".into()));
        }
        Ok(ResourceRecord {
            resource_type: write.resource_type,
            id: write.id,
            version_id: 1,
            last_updated: fhir::Instant::now(),
            deleted: false,
            body: Arc::from(""),
            index: write.index,
        })
    }

    async fn get(&self, _: ResourceType, _: &str) -> StoreResult<Option<ResourceRecord>> {
        Ok(None)
    }

    async fn get_version(
        &self,
        _: ResourceType,
        _: &str,
        _: u64,
    ) -> StoreResult<Option<ResourceRecord>> {
        Ok(None)
    }

    async fn get_many(&self, _: &[(ResourceType, String)]) -> StoreResult<Vec<ResourceRecord>> {
        Ok(Vec::new())
    }

    async fn list(&self, _: ListQuery) -> StoreResult<ListPage> {
        Ok(ListPage {
            entries: Vec::new(),
            more: false,
        })
    }

    async fn list_keys(&self, queries: Vec<ListQuery>) -> StoreResult<Vec<KeyPage>> {
        Ok(queries.iter().map(|_| KeyPage::default()).collect())
    }

    async fn lookup_contains(
        &self,
        _: ResourceType,
        _: &str,
        probes: &[(String, String)],
    ) -> StoreResult<Vec<bool>> {
        Ok(vec![false; probes.len()])
    }

    async fn put_many(
        &self,
        writes: Vec<ResourceWrite>,
    ) -> StoreResult<Vec<StoreResult<ResourceRecord>>> {
        let mut out = Vec::with_capacity(writes.len());
        for write in writes {
            out.push(Ok(ResourceStore::put(self, write).await?));
        }
        Ok(out)
    }
}

impl KeyValueStore for NullStore {
    async fn write(
        &self,
        ns: &str,
        key: &str,
        value: &Value,
        _: Option<i64>,
        when: WriteWhen,
    ) -> StoreResult<bool> {
        let mut ledger = self.ledger();
        let k = format!("{ns}/{key}");
        let held = ledger.get(&k).map(|entry| StoredVersion {
            version: entry.version,
            expires_at: None,
        });
        let Some(version) = when.decide(held, 0) else {
            return Ok(false);
        };
        let value = value.clone();
        let expires_at = None;
        ledger.insert(
            k,
            KvEntry {
                value,
                version,
                expires_at,
            },
        );
        Ok(true)
    }

    async fn get(&self, ns: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        Ok(self.ledger().get(&format!("{ns}/{key}")).cloned())
    }

    async fn take(&self, ns: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        Ok(self.ledger().remove(&format!("{ns}/{key}")))
    }

    async fn delete(&self, ns: &str, key: &str) -> StoreResult<()> {
        self.ledger().remove(&format!("{ns}/{key}"));
        Ok(())
    }

    async fn increment(&self, _: &str, _: &str, _: i64, _: Option<i64>) -> StoreResult<i64> {
        Err(StoreError::InvalidValue("not a counter store".into()))
    }

    async fn list(&self, _: &str, _: &str, _: usize) -> StoreResult<Vec<(String, KvEntry)>> {
        Ok(Vec::new())
    }
}
