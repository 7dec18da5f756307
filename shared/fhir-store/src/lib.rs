//! The storage port.
//!
//! Everything the API and the ingest pipeline need from storage is [`ResourceStore`]:
//! versioned writes with optimistic concurrency, reads of the current or a past
//! version, and ordered, paged listings of a *partition*. A partition is what one
//! DynamoDB `Query` can serve, so no search ever needs a table scan:
//!
//! * [`Partition::Compartment`]: one member's resources of one type, newest first.
//!   Every member-owned search (Patient, Coverage, ExplanationOfBenefit,
//!   RelatedPerson) is served here, because authorization already limits it to the
//!   token's member.
//! * [`Partition::Type`]: every current resource of a directory type
//!   (Organization, Practitioner), for searches with no selective parameter.
//! * [`Partition::Lookup`]: a directory type's look-up terms (names, address parts,
//!   identifiers) with a prefix, for `name=smi`, `identifier=123`.
//!
//! The remaining parameters are then matched in memory against the stored
//! [`fhir_search::SearchIndex`]. Adapters: `store-dynamodb` and `store-redb`.
//!
//! Records that are not FHIR resources (authorization codes, refresh-token handles,
//! counters, the ingest ledger) go through the second port, [`KeyValueStore`] (module
//! [`kv`]), which both adapters implement on the same table or database file.

pub mod budget;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod keys;
pub mod kv;
mod record;
pub mod version;

pub use kv::{KeyValueStore, KvEntry};
pub use record::{
    KeyPage, ListPage, ListQuery, Partition, ResourceRecord, ResourceWrite, SortKey, WriteCondition,
};

use std::future::Future;

use fhir::ResourceType;

/// Errors every adapter reports the same way.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: someone else wrote first. Re-read and retry.
    #[error("write conflict on {resource_type}/{id}: the current version is not the expected one")]
    Conflict {
        resource_type: ResourceType,
        id: String,
    },
    /// The stored bytes could not be decoded. Never caused by a client request.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The backend failed (network, throttling after retries, disk).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A key-value namespace or key the adapters cannot store safely (empty, too long,
    /// or containing a separator character). A caller bug, refused before any I/O.
    #[error("invalid key-value key: {0}")]
    InvalidKey(String),
    /// A key-value write the store refuses: a value over the size limit, or an
    /// increment of a value that is not an integer counter (or would overflow).
    #[error("invalid key-value value: {0}")]
    InvalidValue(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The storage port. Implementations: DynamoDB (on AWS) and redb (embedded, local).
///
/// All methods take `&self`; implementations are shared across concurrent requests.
pub trait ResourceStore: Send + Sync {
    /// Writes a new version of a resource.
    ///
    /// The store assigns `version_id` (previous + 1, or 1) and `last_updated` (now, and
    /// always later than the previous version's), writes `meta.versionId` and
    /// `meta.lastUpdated` into the stored body, keeps every earlier version readable,
    /// and maintains the partitions the record belongs to. The write happens only if
    /// `condition` holds, atomically; otherwise it returns [`StoreError::Conflict`].
    fn put(&self, write: ResourceWrite)
    -> impl Future<Output = StoreResult<ResourceRecord>> + Send;

    /// The current version, including a deleted tombstone (`deleted == true`).
    fn get(
        &self,
        resource_type: ResourceType,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<ResourceRecord>>> + Send;

    /// One past or current version.
    fn get_version(
        &self,
        resource_type: ResourceType,
        id: &str,
        version_id: u64,
    ) -> impl Future<Output = StoreResult<Option<ResourceRecord>>> + Send;

    /// The current versions of many resources (for `_include`); missing ones are left out.
    ///
    /// Like [`ResourceStore::get`], a deleted resource comes back as its tombstone
    /// (`deleted == true`): callers serving `_include` must skip those. Each distinct
    /// key appears at most once, in the order of its first occurrence in `keys`.
    fn get_many(
        &self,
        keys: &[(ResourceType, String)],
    ) -> impl Future<Output = StoreResult<Vec<ResourceRecord>>> + Send;

    /// One page of a partition, in sort-key order (descending when asked).
    fn list(&self, query: ListQuery) -> impl Future<Output = StoreResult<ListPage>> + Send;

    /// One page of each query, keys only: what [`ResourceStore::list`] would return
    /// for it, as (position, id) without the records, so no resource is read or
    /// decoded. The pages come in the order of `queries`. For resolving a search to
    /// ids first (chains, several look-up terms, `near`'s cells) and reading only the
    /// page that is answered. redb: one read transaction; DynamoDB: one Query per
    /// query (several in flight), projected to the keys.
    fn list_keys(
        &self,
        queries: Vec<ListQuery>,
    ) -> impl Future<Output = StoreResult<Vec<KeyPage>>> + Send;

    /// Whether each `(term, id)` is a current look-up entry of `resource_type`'s
    /// parameter `param`: the resource `id` is current and has exactly `term` (as
    /// [`keys::exact_term_prefix`] lists it) among its look-up terms. One answer per
    /// probe, in order. For deciding a criterion on keys alone. redb: point reads in one
    /// read transaction; DynamoDB: BatchGetItem on the look-up items' keys.
    fn lookup_contains(
        &self,
        resource_type: ResourceType,
        param: &str,
        probes: &[(String, String)],
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

    /// Writes many resources, each exactly as [`ResourceStore::put`] would (its own
    /// condition, version and index entries), in as few backend round trips as the
    /// store allows: redb commits them in one write transaction (one fsync); DynamoDB
    /// writes each in its own TransactWriteItems, several in flight. One outcome per
    /// write, in order: a write whose condition fails is a [`StoreError::Conflict`]
    /// there and the others still happen. An `Err` of the whole call (a backend
    /// failure) may leave, on DynamoDB, some of the writes done, as separate `put`s
    /// would; redb then writes none.
    fn put_many(
        &self,
        writes: Vec<ResourceWrite>,
    ) -> impl Future<Output = StoreResult<Vec<StoreResult<ResourceRecord>>>> + Send;
}

/// Read-modify-write with retry: the way to update a resource without losing a
/// concurrent writer's change.
///
/// `change` receives the current version (if any) and returns the next body, or
/// `None` to leave the resource as it is. On a conflict the current version is read
/// again and `change` runs again, after a short random pause ([`conflict_backoff`]):
/// without it, writers that keep colliding on a hot resource can starve one another.
/// Gives up with [`StoreError::Conflict`] after [`UPDATE_ATTEMPTS`] attempts.
pub async fn update_with<S, F>(
    store: &S,
    resource_type: ResourceType,
    id: &str,
    mut change: F,
) -> StoreResult<Option<ResourceRecord>>
where
    S: ResourceStore + ?Sized,
    F: FnMut(Option<&ResourceRecord>) -> Option<ResourceWrite>,
{
    for attempt in 0..UPDATE_ATTEMPTS {
        if attempt > 0 {
            conflict_backoff(attempt).await;
        }
        let current = store.get(resource_type, id).await?;
        let Some(mut write) = change(current.as_ref()) else {
            return Ok(None);
        };
        write.condition = match &current {
            Some(record) => WriteCondition::VersionIs(record.version_id),
            None => WriteCondition::Absent,
        };
        match store.put(write).await {
            Ok(record) => return Ok(Some(record)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Conflict {
        resource_type,
        id: id.to_owned(),
    })
}

/// How many read-modify-write attempts [`update_with`] makes before reporting a conflict.
pub const UPDATE_ATTEMPTS: u32 = 48;

/// Sleeps a random time in `[0, min(2 ms × 2^attempt, 500 ms))` ("full jitter"), so
/// writers that just collided spread out instead of colliding again in lockstep.
pub async fn conflict_backoff(attempt: u32) {
    const BASE_MICROS: u64 = 2_000;
    // High enough to outlast a slow round trip (a loaded stand-in, a throttled table).
    const CAP_MICROS: u64 = 500_000;
    let ceiling = BASE_MICROS
        .saturating_mul(1 << attempt.min(16))
        .min(CAP_MICROS);
    let pause = jitter() % ceiling.max(1);
    tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
}

/// A cheap, non-cryptographic random number: good enough to de-synchronise retries.
fn jitter() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    hasher.write_u32(nanos);
    hasher.finish()
}
