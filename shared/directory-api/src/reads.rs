//! The store as a directory search reads it: every read goes to the store the first
//! time and, when a [`ReadCache`] is given, comes from memory after that for as
//! long as the directory stays at the generation it was read at.
//!
//! Why: searches that never repeat as a whole still share nearly all of their parts.
//! "Family medicine at 43215" and "cardiology at 43215" list the same Locations and
//! the same roles at them; every search for family medicine tests the same
//! specialty term; a practitioner shows up in many pages. The response cache
//! ([`crate::cache`]) only helps when a whole URL comes again. This cache keeps the
//! parts: key listings, the ids that hold a term ([`Reads::members`]), records and
//! streamed pages, all shared (`Arc`) rather than copied out. A computed search
//! then costs hash look-ups and the Bundle, not hundreds of B-tree reads (redb) or
//! a Query per chain target (DynamoDB, where it also saves read units). Keys carry
//! the generation the request read, so a load retires every earlier read at once,
//! exactly as it retires the answers; entries also
//! expire after the answers' `max-age`, which bounds staleness should a write ever
//! bypass the loader. What was read while a load was being applied can mix old and
//! new, as reading the store itself would; the page is checked against its records
//! anyway.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fhir::ResourceType;
use fhir_store::{
    KeyPage, ListPage, ListQuery, Partition, ResourceRecord, ResourceStore, SortKey, StoreError,
    StoreResult,
};

/// What was read, by the directory generation it was read at.
pub(crate) struct ReadCache {
    entries: quick_cache::sync::Cache<(u64, ReadKey), Entry, ByBytes>,
    ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReadKey {
    Keys(ListQuery),
    Page(ListQuery),
    Record(ResourceType, String),
    /// (type, param, term): the ids holding the term.
    Members(ResourceType, String, String),
}

/// A key looked up without copying it: hashes and compares as `(u64, ReadKey)`.
#[derive(Hash)]
struct Borrowed<'a>(u64, &'a ReadKey);

impl quick_cache::Equivalent<(u64, ReadKey)> for Borrowed<'_> {
    fn equivalent(&self, key: &(u64, ReadKey)) -> bool {
        self.0 == key.0 && *self.1 == key.1
    }
}

#[derive(Clone)]
enum ReadValue {
    Keys(Arc<KeyPage>),
    Page(Arc<SharedPage>),
    /// `None`: the store holds no such resource (asked again, the answer is the same).
    Record(Option<Arc<ResourceRecord>>),
    /// `None`: more than [`MAX_MEMBERS`].
    Members(Option<Arc<Members>>),
}

/// The ids that hold one look-up term.
pub(crate) type Members = HashSet<Box<str>>;

/// The most ids [`Reads::members`] keeps for one term; past it, candidates are probed.
pub(crate) const MAX_MEMBERS: usize = 10_000;
/// Entries per store call while listing a term's members.
const MEMBERS_PAGE: usize = 1_000;

#[derive(Clone)]
struct Entry {
    read_at: Instant,
    value: ReadValue,
}

/// One page of a listing with its records shared: [`ListPage`] as this module hands
/// it out, so a record in memory is never copied for a search.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedPage {
    pub entries: Vec<(SortKey, Arc<ResourceRecord>)>,
    pub more: bool,
}

impl From<ListPage> for SharedPage {
    fn from(page: ListPage) -> Self {
        SharedPage {
            entries: page
                .entries
                .into_iter()
                .map(|(key, record)| (key, Arc::new(record)))
                .collect(),
            more: page.more,
        }
    }
}

/// Bookkeeping per entry beyond its text: the cache's slot, `Arc`s, the index's vectors.
const OVERHEAD: usize = 96;
/// A guess at the mean entry, for sizing the table up front.
const MEAN_ENTRY_BYTES: u64 = 256;

/// Weighs an entry by about the bytes it holds.
#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<(u64, ReadKey), Entry> for ByBytes {
    fn weight(&self, (_, key): &(u64, ReadKey), entry: &Entry) -> u64 {
        (weight(key) + weight_of_value(&entry.value)) as u64
    }
}

impl ReadCache {
    /// At most `max_bytes` of reads (approximately), each for at most `ttl`: the
    /// generation retires them at a load, the time limit should a write ever reach
    /// the store without one (a load that failed half-way and is never retried).
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let items = usize::try_from(max_bytes / MEAN_ENTRY_BYTES).unwrap_or(usize::MAX);
        ReadCache {
            entries: quick_cache::sync::Cache::with_weighter(items.max(16), max_bytes, ByBytes),
            ttl,
        }
    }

    fn get(&self, generation: u64, key: &ReadKey) -> Option<ReadValue> {
        self.entries
            .get(&Borrowed(generation, key))
            .filter(|entry| entry.read_at.elapsed() < self.ttl)
            .map(|entry| entry.value)
    }

    /// The value of `key`, read by `read` when it is not in memory: once, however
    /// many ask for it at the same time (the others wait for that read).
    async fn get_or_read(
        &self,
        generation: u64,
        key: ReadKey,
        read: impl Future<Output = StoreResult<ReadValue>>,
    ) -> StoreResult<ReadValue> {
        let key = (generation, key);
        if let Some(entry) = self.entries.peek(&key)
            && entry.read_at.elapsed() >= self.ttl
        {
            self.entries.remove(&key);
        }
        let entry = self
            .entries
            .get_or_insert_async(&key, async {
                Ok::<_, StoreError>(Entry {
                    read_at: Instant::now(),
                    value: read.await?,
                })
            })
            .await?;
        Ok(entry.value)
    }

    fn insert(&self, generation: u64, key: ReadKey, value: ReadValue) {
        let entry = Entry {
            read_at: Instant::now(),
            value,
        };
        self.entries.insert((generation, key), entry);
    }
}

fn weight(key: &ReadKey) -> usize {
    OVERHEAD
        + match key {
            ReadKey::Keys(q) | ReadKey::Page(q) => query_weight(q),
            ReadKey::Record(_, id) => id.len(),
            ReadKey::Members(_, param, term) => param.len() + term.len(),
        }
}

fn query_weight(query: &ListQuery) -> usize {
    let partition = match &query.partition {
        Partition::Lookup { param, prefix, .. } => param.len() + prefix.len(),
        Partition::Compartment { patient, .. } => patient.len(),
        Partition::Type(_) => 0,
    };
    partition + query.after.as_ref().map_or(0, |a| a.0.len()) + 64
}

fn weight_of_value(value: &ReadValue) -> usize {
    match value {
        ReadValue::Keys(page) => page
            .entries
            .iter()
            .map(|(key, id)| key.0.len() + id.len() + 48)
            .sum(),
        ReadValue::Page(page) => page
            .entries
            .iter()
            .map(|(key, record)| key.0.len() + record_weight(record))
            .sum(),
        ReadValue::Record(record) => record.as_deref().map_or(0, record_weight),
        ReadValue::Members(members) => members
            .as_deref()
            .map_or(0, |m| m.iter().map(|id| id.len() + 24).sum()),
    }
}

/// The body, and about as much again for the id and the stored search index.
fn record_weight(record: &ResourceRecord) -> usize {
    2 * record.body.len() + OVERHEAD
}

/// The store, through the cache when there is one.
pub(crate) struct Reads<'a, S> {
    pub store: &'a S,
    pub cache: Option<(&'a ReadCache, u64)>,
}

impl<S: ResourceStore> Reads<'_, S> {
    /// [`ResourceStore::list`], with the records shared.
    pub async fn list(&self, query: ListQuery) -> StoreResult<Arc<SharedPage>> {
        let Some((cache, generation)) = self.cache else {
            return Ok(Arc::new(self.store.list(query).await?.into()));
        };
        let key = ReadKey::Page(query.clone());
        if let Some(ReadValue::Page(page)) = cache.get(generation, &key) {
            return Ok(page);
        }
        let page: Arc<SharedPage> = Arc::new(self.store.list(query).await?.into());
        cache.insert(generation, key, ReadValue::Page(Arc::clone(&page)));
        Ok(page)
    }

    /// [`ResourceStore::list_keys`], shared rather than copied out of memory: the
    /// queries not in memory in one store call.
    pub async fn list_keys(&self, queries: Vec<ListQuery>) -> StoreResult<Vec<Arc<KeyPage>>> {
        let Some((cache, generation)) = self.cache else {
            let pages = self.store.list_keys(queries).await?;
            return Ok(pages.into_iter().map(Arc::new).collect());
        };
        let mut pages: Vec<Option<Arc<KeyPage>>> = Vec::with_capacity(queries.len());
        let mut missing: Vec<(usize, ReadKey)> = Vec::new();
        for query in queries {
            let key = ReadKey::Keys(query);
            match cache.get(generation, &key) {
                Some(ReadValue::Keys(page)) => pages.push(Some(page)),
                _ => {
                    missing.push((pages.len(), key));
                    pages.push(None);
                }
            }
        }
        if !missing.is_empty() {
            let queries = missing
                .iter()
                .filter_map(|(_, key)| match key {
                    ReadKey::Keys(query) => Some(query.clone()),
                    _ => None,
                })
                .collect();
            let read = self.store.list_keys(queries).await?;
            for ((slot, key), page) in missing.into_iter().zip(read) {
                let page = Arc::new(page);
                cache.insert(generation, key, ReadValue::Keys(Arc::clone(&page)));
                pages[slot] = Some(page);
            }
        }
        Ok(pages.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// [`ResourceStore::get_many`], with the records shared: each resource once, in
    /// the order asked; the ones not in memory in one store call.
    pub async fn get_many(
        &self,
        keys: &[(ResourceType, String)],
    ) -> StoreResult<Vec<Arc<ResourceRecord>>> {
        let Some((cache, generation)) = self.cache else {
            let records = self.store.get_many(keys).await?;
            return Ok(records.into_iter().map(Arc::new).collect());
        };
        let mut seen = HashSet::with_capacity(keys.len());
        let mut found: Vec<Option<Arc<ResourceRecord>>> = Vec::with_capacity(keys.len());
        let mut missing: Vec<(usize, (ResourceType, String))> = Vec::new();
        for (resource_type, id) in keys.iter().filter(|k| seen.insert(*k)) {
            match cache.get(generation, &ReadKey::Record(*resource_type, id.clone())) {
                Some(ReadValue::Record(record)) => found.push(record),
                _ => {
                    missing.push((found.len(), (*resource_type, id.clone())));
                    found.push(None);
                }
            }
        }
        if !missing.is_empty() {
            let wanted: Vec<(ResourceType, String)> =
                missing.iter().map(|(_, k)| k.clone()).collect();
            let mut read: HashMap<(ResourceType, String), Arc<ResourceRecord>> = self
                .store
                .get_many(&wanted)
                .await?
                .into_iter()
                .map(|r| ((r.resource_type, r.id.clone()), Arc::new(r)))
                .collect();
            for (slot, key) in missing {
                let record = read.remove(&key);
                found[slot] = record.clone();
                cache.insert(
                    generation,
                    ReadKey::Record(key.0, key.1),
                    ReadValue::Record(record),
                );
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// [`ResourceStore::lookup_contains`], from the store: with a cache, a criterion
    /// is checked against [`Reads::members`] first, and probes are what is left when
    /// a term has too many.
    pub async fn lookup_contains(
        &self,
        resource_type: ResourceType,
        param: &str,
        probes: &[(String, String)],
    ) -> StoreResult<Vec<bool>> {
        self.store
            .lookup_contains(resource_type, param, probes)
            .await
    }

    /// The ids of the current resources of `resource_type` that hold exactly `term`
    /// under `param`, when there is a cache and there are at most [`MAX_MEMBERS`] of
    /// them; `None` otherwise (the caller probes the store instead). Listed once per
    /// term and generation: a term that many searches test (a specialty, a network)
    /// is then one hash look-up per candidate rather than one store read.
    pub async fn members(
        &self,
        resource_type: ResourceType,
        param: &str,
        term: &str,
    ) -> StoreResult<Option<Arc<Members>>> {
        let Some((cache, generation)) = self.cache else {
            return Ok(None);
        };
        let key = ReadKey::Members(resource_type, param.to_owned(), term.to_owned());
        // Listed once however many searches want it at the same time: after a load
        // or at start, every connection asks for the same popular terms at once.
        let listed = cache
            .get_or_read(generation, key, async {
                let members = self.list_members(resource_type, param, term).await?;
                Ok(ReadValue::Members(members))
            })
            .await?;
        Ok(match listed {
            ReadValue::Members(members) => members,
            _ => None,
        })
    }

    async fn list_members(
        &self,
        resource_type: ResourceType,
        param: &str,
        term: &str,
    ) -> StoreResult<Option<Arc<Members>>> {
        let partition = Partition::Lookup {
            resource_type,
            param: param.to_owned(),
            prefix: fhir_store::keys::exact_term_prefix(term),
        };
        let mut members = Members::new();
        let mut after = None;
        loop {
            let mut query = ListQuery::new(partition.clone(), MEMBERS_PAGE);
            query.after = after;
            let Some(page) = self.store.list_keys(vec![query]).await?.pop() else {
                return Ok(None);
            };
            after = page.entries.last().map(|(k, _)| k.clone());
            members.extend(page.entries.into_iter().map(|(_, id)| id.into_boxed_str()));
            if members.len() > MAX_MEMBERS {
                return Ok(None);
            }
            if !page.more {
                return Ok(Some(Arc::new(members)));
            }
        }
    }
}
