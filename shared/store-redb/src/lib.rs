//! [`ResourceStore`] on redb: the durable embedded store for running without AWS.
//!
//! It mirrors the DynamoDB key design (`infra/dynamodb-keys.md`) with four tables in one
//! file, all written in one redb write transaction per `put`:
//!
//! | table        | key                          | value                                   |
//! |--------------|------------------------------|-----------------------------------------|
//! | `current`    | `R#{type}#{id}`              | current record + the index entries it owns |
//! | `versions`   | (`R#{type}#{id}`, version)   | every version's record                  |
//! | `partitions` | `{C#…/T#…}\0{lastUpdated}#{id}` | `R#{type}#{id}`                       |
//! | `lookups`    | `L#{type}#{param}\0{term}\u{1}{id}` | `R#{type}#{id}`                  |
//! | `kv`         | `K#{namespace}\0{key}`       | a [`KeyValueStore`] record (see `kv.rs`) |
//!
//! Keys and range bounds come from [`fhir_store::keys`], the same functions the
//! DynamoDB adapter uses. A listing reads the index range and the current records in one
//! read transaction, so it is consistent (DynamoDB's GSI listing is eventually so).
//!
//! # Concurrency
//! redb serialises write transactions, and `put` checks its condition inside its write
//! transaction, so conditional writes are atomic. Commits are fsync-durable
//! (`Durability::Immediate`, redb's default).
//!
//! **One process at a time.** The database is opened in redb's default
//! `ConcurrencyMode::ExclusiveWriter`, which locks the whole file: a second process (or a
//! second `open` in the same process) gets [`OpenError::AlreadyOpen`]. Share one
//! `RedbStore` (it is cheap to clone) between the tasks of a process instead. redb 4.6 also
//! has a `MultiWriter` mode (byte-range locks, Linux/macOS/Windows) which we do not use yet:
//! the local runner is a single process.
//!
//! # Async
//! redb calls block. Every operation runs in `tokio::task::spawn_blocking`: writes wait
//! for an fsync (milliseconds), and reads of large records copy megabytes. The hop costs
//! tens of microseconds, small next to an HTTP request. Measured by the `timing` test
//! (2 cores): a compartment page of 20 small records takes 39 µs inline and 69 µs through
//! `spawn_blocking` in release (159 µs / 180 µs in a debug build).

mod codec;
mod kv;

use std::collections::BTreeSet;
use std::fmt::Display;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use codec::Stored;
use fhir::ResourceType;
#[cfg(doc)]
use fhir_store::KeyValueStore;
use fhir_store::keys::{self, EntryKey};
use fhir_store::version::{Previous, next_version};
use fhir_store::{
    KeyPage, ListPage, ListQuery, Partition, ResourceRecord, ResourceStore, ResourceWrite, SortKey,
    StoreError, StoreResult,
};
use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};

const CURRENT: TableDefinition<&str, &[u8]> = TableDefinition::new("current");
const VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("versions");
const PARTITIONS: TableDefinition<&str, &str> = TableDefinition::new("partitions");
const LOOKUPS: TableDefinition<&str, &str> = TableDefinition::new("lookups");

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0} is already open by another process (redb allows one process per database file)")]
    AlreadyOpen(PathBuf),
    #[error("cannot create the directory for {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open redb database {path}: {source}")]
    Database { path: PathBuf, source: redb::Error },
    #[error("cannot purge expired key-value records of {path}: {source}")]
    Purge { path: PathBuf, source: StoreError },
}

/// The embedded store. Clones share one database handle.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl RedbStore {
    /// Opens (creating if needed) the database file at `path`, creating its directory and
    /// the tables, so later read transactions never meet a missing table, and purges
    /// expired key-value records (nothing else ever deletes them locally).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| OpenError::Directory {
                path: path.to_owned(),
                source,
            })?;
        }
        let db = Database::create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => OpenError::AlreadyOpen(path.to_owned()),
            other => OpenError::Database {
                path: path.to_owned(),
                source: other.into(),
            },
        })?;
        create_tables(&db).map_err(|source| OpenError::Database {
            path: path.to_owned(),
            source,
        })?;
        kv::purge_expired(&db).map_err(|e| OpenError::Purge {
            path: path.to_owned(),
            source: e,
        })?;
        Ok(RedbStore { db: Arc::new(db) })
    }

    /// Runs blocking redb work off the async runtime's worker threads.
    async fn blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(backend)?
    }
}

fn create_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(CURRENT)?;
    txn.open_table(VERSIONS)?;
    txn.open_table(PARTITIONS)?;
    txn.open_table(LOOKUPS)?;
    txn.open_table(kv::KV)?;
    txn.commit()?;
    Ok(())
}

impl ResourceStore for RedbStore {
    async fn put(&self, write: ResourceWrite) -> StoreResult<ResourceRecord> {
        self.blocking(move |db| put_blocking(db, &write)).await
    }

    async fn get(
        &self,
        resource_type: ResourceType,
        id: &str,
    ) -> StoreResult<Option<ResourceRecord>> {
        let key = keys::resource_key(resource_type, id);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            read_record(&txn, &key)
        })
        .await
    }

    async fn get_version(
        &self,
        resource_type: ResourceType,
        id: &str,
        version_id: u64,
    ) -> StoreResult<Option<ResourceRecord>> {
        let key = keys::resource_key(resource_type, id);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(VERSIONS).map_err(backend)?;
            let value = table.get((key.as_str(), version_id)).map_err(backend)?;
            value.map(|v| codec::decode_record(v.value())).transpose()
        })
        .await
    }

    async fn get_many(&self, keys: &[(ResourceType, String)]) -> StoreResult<Vec<ResourceRecord>> {
        let mut seen = BTreeSet::new();
        let wanted: Vec<String> = keys
            .iter()
            .map(|(t, id)| keys::resource_key(*t, id))
            .filter(|key| seen.insert(key.clone()))
            .collect();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let mut records = Vec::with_capacity(wanted.len());
            let table = txn.open_table(CURRENT).map_err(backend)?;
            for key in &wanted {
                if let Some(value) = table.get(key.as_str()).map_err(backend)? {
                    records.push(codec::decode_record(value.value())?);
                }
            }
            Ok(records)
        })
        .await
    }

    async fn list(&self, query: ListQuery) -> StoreResult<ListPage> {
        self.blocking(move |db| list_blocking(db, &query)).await
    }

    async fn list_keys(&self, queries: Vec<ListQuery>) -> StoreResult<Vec<KeyPage>> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let lookups = txn.open_table(LOOKUPS).map_err(backend)?;
            let partitions = txn.open_table(PARTITIONS).map_err(backend)?;
            queries
                .iter()
                .map(|q| {
                    let table = match q.partition {
                        Partition::Lookup { .. } => &lookups,
                        Partition::Compartment { .. } | Partition::Type(_) => &partitions,
                    };
                    list_keys_in(table, q)
                })
                .collect()
        })
        .await
    }

    async fn lookup_contains(
        &self,
        resource_type: ResourceType,
        param: &str,
        probes: &[(String, String)],
    ) -> StoreResult<Vec<bool>> {
        let pk = keys::lookup_key(resource_type, param);
        let wanted: Vec<String> = probes
            .iter()
            .map(|(term, id)| format!("{pk}\0{}", keys::term_sort_key(term, id).0))
            .collect();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(LOOKUPS).map_err(backend)?;
            // In key order, so consecutive reads walk the same pages.
            let mut order: Vec<usize> = (0..wanted.len()).collect();
            order.sort_by(|a, b| wanted[*a].cmp(&wanted[*b]));
            let mut found = vec![false; wanted.len()];
            for i in order {
                found[i] = table.get(wanted[i].as_str()).map_err(backend)?.is_some();
            }
            Ok(found)
        })
        .await
    }

    async fn put_many(
        &self,
        writes: Vec<ResourceWrite>,
    ) -> StoreResult<Vec<StoreResult<ResourceRecord>>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(backend)?;
            let mut outcomes = Vec::with_capacity(writes.len());
            for write in &writes {
                match put_in(&txn, write) {
                    Ok(record) => outcomes.push(Ok(record)),
                    Err(conflict @ StoreError::Conflict { .. }) => outcomes.push(Err(conflict)),
                    // Dropping the transaction aborts it: nothing of the batch is written.
                    Err(other) => return Err(other),
                }
            }
            txn.commit().map_err(backend)?;
            Ok(outcomes)
        })
        .await
    }
}

/// The check-and-write of `put`, in one write transaction: read the current item, check
/// the condition, then write current + version + partition entry + look-up entries.
fn put_blocking(db: &Database, write: &ResourceWrite) -> StoreResult<ResourceRecord> {
    let txn = db.begin_write().map_err(backend)?;
    match put_in(&txn, write) {
        Ok(record) => {
            txn.commit().map_err(backend)?;
            Ok(record)
        }
        Err(error) => {
            txn.abort().map_err(backend)?;
            Err(error)
        }
    }
}

/// One write inside a write transaction: nothing is written when the condition
/// fails (a [`StoreError::Conflict`]).
fn put_in(txn: &WriteTransaction, write: &ResourceWrite) -> StoreResult<ResourceRecord> {
    let key = keys::resource_key(write.resource_type, &write.id);
    let previous = {
        let current = txn.open_table(CURRENT).map_err(backend)?;
        let value = current.get(key.as_str()).map_err(backend)?;
        value.map(|v| codec::decode(v.value())).transpose()?
    };
    let record = next_version(
        write,
        previous
            .as_ref()
            .map(|p| Previous::from(&p.record))
            .as_ref(),
    )?;
    let stored = Stored {
        partition: keys::partition_entry(&record),
        lookups: keys::lookup_entries(&record).into_iter().collect(),
        record,
    };
    write_items(txn, &key, previous.as_ref(), &stored)?;
    Ok(stored.record)
}

fn write_items(
    txn: &WriteTransaction,
    key: &str,
    previous: Option<&Stored>,
    stored: &Stored,
) -> StoreResult<()> {
    let old_partition = previous.and_then(|p| p.partition.as_ref());
    replace_entries(
        txn,
        PARTITIONS,
        key,
        old_partition.into_iter(),
        stored.partition.iter(),
    )?;
    let old_lookups = previous.map(|p| p.lookups.as_slice()).unwrap_or_default();
    replace_entries(txn, LOOKUPS, key, old_lookups.iter(), stored.lookups.iter())?;

    let mut versions = txn.open_table(VERSIONS).map_err(backend)?;
    let version_value = codec::encode(&Stored {
        record: stored.record.clone(),
        partition: None,
        lookups: Vec::new(),
    })?;
    versions
        .insert((key, stored.record.version_id), version_value.as_slice())
        .map_err(backend)?;
    let mut current = txn.open_table(CURRENT).map_err(backend)?;
    current
        .insert(key, codec::encode(stored)?.as_slice())
        .map_err(backend)?;
    Ok(())
}

/// Removes the entries that are gone and inserts the new ones (unchanged ones stay).
fn replace_entries<'e>(
    txn: &WriteTransaction,
    table: TableDefinition<&str, &str>,
    resource_key: &str,
    old: impl Iterator<Item = &'e EntryKey>,
    new: impl Iterator<Item = &'e EntryKey>,
) -> StoreResult<()> {
    let old: BTreeSet<&EntryKey> = old.collect();
    let new: BTreeSet<&EntryKey> = new.collect();
    let mut table = txn.open_table(table).map_err(backend)?;
    for gone in old.difference(&new) {
        table.remove(entry_key(gone).as_str()).map_err(backend)?;
    }
    for added in new.difference(&old) {
        table
            .insert(entry_key(added).as_str(), resource_key)
            .map_err(backend)?;
    }
    Ok(())
}

/// `pk \0 sk`: `\0` sorts below every key character, so one partition's entries are
/// contiguous and ordered by sort key.
fn entry_key(entry: &EntryKey) -> String {
    format!("{}\0{}", entry.pk, entry.sk)
}

fn read_record(txn: &ReadTransaction, key: &str) -> StoreResult<Option<ResourceRecord>> {
    let table = txn.open_table(CURRENT).map_err(backend)?;
    let value = table.get(key).map_err(backend)?;
    value.map(|v| codec::decode_record(v.value())).transpose()
}

/// Reads `limit + 1` index entries of the range (the extra one only tells `more`), then
/// the current record of each, in the same snapshot.
fn list_blocking(db: &Database, query: &ListQuery) -> StoreResult<ListPage> {
    let txn = db.begin_read().map_err(backend)?;
    let table_def = match query.partition {
        Partition::Lookup { .. } => LOOKUPS,
        Partition::Compartment { .. } | Partition::Type(_) => PARTITIONS,
    };
    let table = txn.open_table(table_def).map_err(backend)?;
    let (hits, more) = list_hits(&table, query)?;
    let current = txn.open_table(CURRENT).map_err(backend)?;
    let mut entries = Vec::with_capacity(hits.len());
    for (sort_key, resource_key) in hits {
        let value = current.get(resource_key.as_str()).map_err(backend)?;
        let record = value.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "index entry {sort_key:?} points at missing {resource_key}"
            ))
        })?;
        entries.push((SortKey(sort_key), codec::decode_record(record.value())?));
    }
    Ok(ListPage { entries, more })
}

/// The keys of one page: the index entries alone, no record read.
fn list_keys_in(table: &IndexTable, query: &ListQuery) -> StoreResult<KeyPage> {
    let (hits, more) = list_hits(table, query)?;
    let entries = hits
        .into_iter()
        .map(|(sort_key, resource_key)| {
            let id = resource_key
                .splitn(3, '#')
                .nth(2)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "index entry {sort_key:?} holds a malformed key {resource_key}"
                    ))
                })?
                .to_owned();
            Ok((SortKey(sort_key), id))
        })
        .collect::<StoreResult<_>>()?;
    Ok(KeyPage { entries, more })
}

/// An index table (`partitions` or `lookups`) open for reading.
type IndexTable = redb::ReadOnlyTable<&'static str, &'static str>;

/// Up to `limit` index entries of the query's range (in `table`, the one its partition
/// kind lives in) as (sort key, resource key), and whether more follow.
fn list_hits(table: &IndexTable, query: &ListQuery) -> StoreResult<(Vec<(String, String)>, bool)> {
    let range = keys::sort_range(query);
    if range.is_empty() {
        return Ok((Vec::new(), false));
    }
    let pk = keys::partition_key(&query.partition);
    let low = format!("{pk}\0{}", range.low.unwrap_or_default());
    let high = match range.high {
        Some(high) => Bound::Included(format!("{pk}\0{high}")),
        None => Bound::Excluded(format!("{pk}\u{1}")),
    };
    let bounds = (
        Bound::Included(low.as_str()),
        high.as_ref().map(String::as_str),
    );
    let range = table.range::<&str>(bounds).map_err(backend)?;
    let want = query.limit.saturating_add(1);
    let hits: Vec<(String, String)> = if query.descending {
        collect_hits(range.rev(), want)?
    } else {
        collect_hits(range, want)?
    };
    let more = hits.len() > query.limit;
    let hits = hits
        .into_iter()
        .take(query.limit)
        .map(|(composite, resource_key)| {
            let sort_key = composite
                .split_once('\0')
                .map(|(_, sk)| sk.to_owned())
                .unwrap_or_default();
            (sort_key, resource_key)
        })
        .collect();
    Ok((hits, more))
}

type RangeItem<'a> = redb::Result<(
    redb::AccessGuard<'a, &'static str>,
    redb::AccessGuard<'a, &'static str>,
)>;

fn collect_hits<'a>(
    range: impl Iterator<Item = RangeItem<'a>>,
    want: usize,
) -> StoreResult<Vec<(String, String)>> {
    range
        .take(want)
        .map(|item| {
            item.map(|(k, v)| (k.value().to_owned(), v.value().to_owned()))
                .map_err(backend)
        })
        .collect()
}

fn backend(error: impl Display) -> StoreError {
    StoreError::Backend(format!("redb: {error}"))
}

#[cfg(test)]
mod timing;
