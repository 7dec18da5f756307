//! [`KeyValueStore`] on redb: the `kv` table of the same database file.
//!
//! Key `K#{namespace}\0{key}` (the DynamoDB partition and sort key joined by `\0`, which
//! sorts below every character a key may hold, so one namespace's records are contiguous
//! and in key order); value the JSON of [`Stored`]. Every operation runs in one redb
//! transaction, and redb serialises write transactions, so `insert`, `replace`, `take`
//! and `increment` are atomic check-and-writes, whatever the number of concurrent
//! callers. Expired records stay in the file until overwritten, deleted or purged by
//! [`RedbStore::purge_expired`] (which `open` runs).

use std::ops::Bound;

use fhir_store::kv::{self, KvEntry, StoredVersion, WriteWhen};
use fhir_store::{KeyValueStore, StoreError, StoreResult, keys};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{RedbStore, backend};

pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// A record as stored: the entry's fields, with the value as JSON.
#[derive(Serialize, Deserialize)]
struct Stored {
    value: Value,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl Stored {
    fn version(&self) -> StoredVersion {
        StoredVersion {
            version: self.version,
            expires_at: self.expires_at,
        }
    }
}

impl From<Stored> for KvEntry {
    fn from(stored: Stored) -> Self {
        KvEntry {
            value: stored.value,
            version: stored.version,
            expires_at: stored.expires_at,
        }
    }
}

/// A write's input, checked and owned so it can move to the blocking thread.
struct Write {
    key: String,
    value: Value,
    expires_at: Option<i64>,
}

impl Write {
    fn new(
        namespace: &str,
        key: &str,
        value: &Value,
        expires_at: Option<i64>,
    ) -> StoreResult<Self> {
        kv::validate_key(namespace, key)?;
        kv::encode_value(namespace, key, value)?;
        Ok(Write {
            key: storage_key(namespace, key),
            value: value.clone(),
            expires_at,
        })
    }
}

/// `K#{namespace}\0{key}`.
fn storage_key(namespace: &str, key: &str) -> String {
    format!("{}\0{key}", keys::kv_partition_key(namespace))
}

fn checked_key(namespace: &str, key: &str) -> StoreResult<String> {
    kv::validate_key(namespace, key)?;
    Ok(storage_key(namespace, key))
}

impl RedbStore {
    /// Deletes every expired key-value record, in one write transaction. Only reclaims
    /// space: expired records are invisible anyway. Returns how many were removed.
    /// Blocks on a write transaction: call it at start-up or from `spawn_blocking`.
    pub fn purge_expired(&self) -> StoreResult<usize> {
        purge_expired(&self.db)
    }
}

pub(crate) fn purge_expired(db: &Database) -> StoreResult<usize> {
    let now = kv::unix_now();
    let txn = db.begin_write().map_err(backend)?;
    let mut removed = 0;
    {
        let mut table = txn.open_table(KV).map_err(backend)?;
        table
            .retain(|_, bytes| {
                // Undecodable records are kept for `get` to report as corrupt.
                let live = decode(bytes).map_or(true, |s| kv::is_live(s.expires_at, now));
                removed += usize::from(!live);
                live
            })
            .map_err(backend)?;
    }
    txn.commit().map_err(backend)?;
    Ok(removed)
}

impl KeyValueStore for RedbStore {
    async fn write(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        expires_at: Option<i64>,
        when: WriteWhen,
    ) -> StoreResult<bool> {
        let write = Write::new(namespace, key, value, expires_at)?;
        self.blocking(move |db| {
            write_if(db, &write.key, |current| {
                let held = current.as_ref().map(Stored::version);
                when.decide(held, kv::unix_now())
                    .map(|version| stored(&write, version))
            })
        })
        .await
    }

    async fn get(&self, namespace: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        let key = checked_key(namespace, key)?;
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let value = table.get(key.as_str()).map_err(backend)?;
            let stored = value.map(|v| decode(v.value())).transpose()?;
            Ok(live(stored, kv::unix_now()))
        })
        .await
    }

    async fn take(&self, namespace: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        let key = checked_key(namespace, key)?;
        self.blocking(move |db| take_blocking(db, &key)).await
    }

    async fn delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        let key = checked_key(namespace, key)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            txn.open_table(KV)
                .map_err(backend)?
                .remove(key.as_str())
                .map_err(backend)?;
            txn.commit().map_err(backend)
        })
        .await
    }

    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<i64> {
        let storage_key = checked_key(namespace, key)?;
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.blocking(move |db| {
            let count =
                |current: Option<&Value>| kv::add_to_counter(&namespace, &key, current, delta);
            increment_blocking(db, &storage_key, count, expires_at)
        })
        .await
    }

    async fn list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<(String, KvEntry)>> {
        kv::validate_prefix(namespace, prefix)?;
        let partition = keys::kv_partition_key(namespace);
        let prefix = prefix.to_owned();
        self.blocking(move |db| list_blocking(db, &partition, &prefix, limit))
            .await
    }
}

fn stored(write: &Write, version: u64) -> Stored {
    Stored {
        value: write.value.clone(),
        version,
        expires_at: write.expires_at,
    }
}

/// The check-and-write shared by the writes: in one write transaction, `decide` sees
/// the stored record (live or expired) and returns the record to store, or `None` to
/// leave it (then the transaction is aborted and the answer is false).
fn write_if(
    db: &Database,
    key: &str,
    decide: impl FnOnce(Option<Stored>) -> Option<Stored>,
) -> StoreResult<bool> {
    let txn = db.begin_write().map_err(backend)?;
    let current = read(&txn, key)?;
    let Some(next) = decide(current) else {
        txn.abort().map_err(backend)?;
        return Ok(false);
    };
    write(&txn, key, &next)?;
    txn.commit().map_err(backend)?;
    Ok(true)
}

fn take_blocking(db: &Database, key: &str) -> StoreResult<Option<KvEntry>> {
    let txn = db.begin_write().map_err(backend)?;
    let Some(current) = live(read(&txn, key)?, kv::unix_now()) else {
        txn.abort().map_err(backend)?;
        return Ok(None);
    };
    txn.open_table(KV)
        .map_err(backend)?
        .remove(key)
        .map_err(backend)?;
    txn.commit().map_err(backend)?;
    Ok(Some(current))
}

/// Reads, adds and writes in one write transaction; `count` is
/// [`kv::add_to_counter`] for this record (refusing non-integers and overflow).
fn increment_blocking(
    db: &Database,
    key: &str,
    count: impl FnOnce(Option<&Value>) -> StoreResult<i64>,
    expires_at: Option<i64>,
) -> StoreResult<i64> {
    let txn = db.begin_write().map_err(backend)?;
    let stored = read(&txn, key)?;
    let version = kv::next_version(stored.as_ref().map(Stored::version));
    let current = live(stored, kv::unix_now());
    let count = match count(current.as_ref().map(|c| &c.value)) {
        Ok(count) => count,
        Err(refused) => {
            txn.abort().map_err(backend)?;
            return Err(refused);
        }
    };
    let next = Stored {
        value: Value::from(count),
        version,
        expires_at: kv::counter_expiry(current.as_ref(), expires_at),
    };
    write(&txn, key, &next)?;
    txn.commit().map_err(backend)?;
    Ok(count)
}

/// Reads the range from `K#{namespace}\0{prefix}`, stopping at the first key without
/// the prefix or once `limit` live records are found, in one read transaction.
fn list_blocking(
    db: &Database,
    partition: &str,
    prefix: &str,
    limit: usize,
) -> StoreResult<Vec<(String, KvEntry)>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let start = format!("{partition}\0{prefix}");
    let txn = db.begin_read().map_err(backend)?;
    let table = txn.open_table(KV).map_err(backend)?;
    let range = table
        .range::<&str>((Bound::Included(start.as_str()), Bound::Unbounded))
        .map_err(backend)?;
    let now = kv::unix_now();
    let mut found = Vec::new();
    for item in range {
        let (composite, bytes) = item.map_err(backend)?;
        let Some(key) = composite.value().strip_prefix(start.as_str()) else {
            break;
        };
        if let Some(entry) = live(Some(decode(bytes.value())?), now) {
            found.push((format!("{prefix}{key}"), entry));
            if found.len() == limit {
                break;
            }
        }
    }
    Ok(found)
}

fn read(txn: &WriteTransaction, key: &str) -> StoreResult<Option<Stored>> {
    let table = txn.open_table(KV).map_err(backend)?;
    let value = table.get(key).map_err(backend)?;
    value.map(|v| decode(v.value())).transpose()
}

fn write(txn: &WriteTransaction, key: &str, stored: &Stored) -> StoreResult<()> {
    let bytes = serde_json::to_vec(stored)
        .map_err(|e| StoreError::Backend(format!("cannot encode key-value record: {e}")))?;
    let mut table = txn.open_table(KV).map_err(backend)?;
    table.insert(key, bytes.as_slice()).map_err(backend)?;
    Ok(())
}

fn decode(bytes: &[u8]) -> StoreResult<Stored> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("redb key-value record: {e}")))
}

/// The stored record as an entry, if it is live at `now`.
fn live(stored: Option<Stored>, now: i64) -> Option<KvEntry> {
    stored
        .filter(|s| kv::is_live(s.expires_at, now))
        .map(KvEntry::from)
}
