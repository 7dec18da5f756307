//! Running a directory search on the store: resolve chains and `_has` to ids, pick
//! the key-based access path, match in memory, order, page, include.
//!
//! Every access is a key Query or a batch get: a look-up partition (`L#{type}#{param}`,
//! by term prefix), the type partition (`T#{type}`), or current items by id. Never a
//! scan. Two ways to page:
//! * **streaming**, when one partition drives the search (one look-up term, or the
//!   whole type): the cursor is the partition's sort key, so a page costs one or a
//!   few Queries however deep it is — how an aggregator pages through everything;
//! * **collected**, when several keys drive it (OR-ed values, a chain's ids, `near`'s
//!   nine geohash cells, `_has`): every candidate is read (at most
//!   [`MAX_CANDIDATES`]), matched, ordered (nearest first for `near`, else by id) and
//!   the cursor is the last order key.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fhir::{Reference, ResourceType};
use fhir_api::ApiError;
use fhir_store::{KeyPage, ListQuery, Partition, ResourceRecord, ResourceStore, SortKey};
use plan_net::params::{Kind, includes as include_table};
use plan_net::{DirectorySearch, IncludeSpec, Resolved, Test};

use crate::reads::{Members, Reads};

/// The most ids a chain's or `_has`'s inner search may resolve to; more is a 400.
pub const MAX_CHAIN_IDS: usize = 1_000;
/// The most look-up entries a collected search may read; more is a 400.
pub const MAX_CANDIDATES: usize = 10_000;
/// The most resources `_revinclude` adds to one page.
pub const MAX_REVINCLUDES: usize = 1_000;
/// The most ids `_id` may name.
const MAX_IDS: usize = 100;
/// Entries per storage call while collecting.
const LIST_BATCH: usize = 500;
/// Keys per `get_many` call (DynamoDB's BatchGetItem takes 100).
const GET_BATCH: usize = 100;
/// Probes per `lookup_contains` call.
const PROBE_BATCH: usize = 1_000;

/// One page of matches and the cursor position after it.
pub(crate) struct Page {
    pub records: Vec<Arc<ResourceRecord>>,
    pub next: Option<String>,
}

/// The key-based access path that drives a search.
enum Driver {
    Ids(Vec<String>),
    /// Look-up terms of one parameter; `exact`: the entry's term must equal the
    /// wanted one (tokens, references), else start with it (strings, geohash cells).
    Terms {
        param: String,
        terms: Vec<String>,
        exact: bool,
        from: Origin,
    },
    Type,
}

/// Which part of the search a [`Driver::Terms`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Criterion(usize),
    Chain(usize),
    Near,
}

/// One candidate of a collected search: its id, its distance when the search orders
/// by distance, and its record once read (only the answered page's are read when the
/// keys decide the search).
pub(crate) struct Candidate {
    id: String,
    distance: Option<f64>,
    record: Option<Arc<ResourceRecord>>,
}

/// One candidate as its listed keys show it: its (id, term) entries, all of one id.
type Listed<'k> = &'k [(&'k str, &'k str)];

/// What a search's chains and `_has` resolved to, and the distances of a
/// `param.near` chain's targets (for nearest-first order).
#[derive(Default)]
struct Resolution {
    resolved: Resolved,
    distances: Option<(usize, HashMap<String, f64>)>,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

pub(crate) struct Searcher<'a, S> {
    /// The store, through the read cache when there is one.
    pub store: Reads<'a, S>,
}

impl<'a, S: ResourceStore> Searcher<'a, S> {
    /// One page of `search`, resuming after `after` (a position this module made).
    pub async fn page(
        &self,
        search: &DirectorySearch,
        count: usize,
        after: Option<String>,
    ) -> Result<Page, ApiError> {
        let resolution = self.resolve(search).await?;
        let driver = driver(search, &resolution)?;
        let streams = search.near.is_none() && resolution.distances.is_none();
        match driver {
            Driver::Type if streams => {
                self.stream(
                    search,
                    &resolution,
                    Partition::Type(search.resource_type),
                    None,
                    count,
                    after,
                )
                .await
            }
            Driver::Terms {
                param,
                terms,
                exact,
                ..
            } if streams && terms.len() == 1 => {
                let term = terms.into_iter().next().unwrap_or_default();
                let partition = lookup(search.resource_type, &param, &term, exact);
                self.stream(
                    search,
                    &resolution,
                    partition,
                    Some((param, term, exact)),
                    count,
                    after,
                )
                .await
            }
            driver => {
                let all = self
                    .collect(search, &resolution, driver, MAX_CANDIDATES)
                    .await?;
                let mut rest: Vec<(String, Candidate)> = all
                    .into_iter()
                    .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
                    .collect();
                let next = (rest.len() > count).then(|| rest[count - 1].0.clone());
                rest.truncate(count);
                let mut page: Vec<Candidate> = rest.into_iter().map(|(_, c)| c).collect();
                self.read_records(search.resource_type, &mut page).await?;
                // The keys decided the page; its records are checked once more, so a
                // load that changed one in between cannot slip in a non-match.
                let records = page
                    .into_iter()
                    .filter_map(|c| c.record)
                    .filter(|r| self.is_match(search, &resolution, r))
                    .collect();
                Ok(Page { records, next })
            }
        }
    }

    /// Pages through one partition, matching in memory. A look-up partition lists a
    /// resource once per term; only its first matching term counts, so a resource
    /// appears once however the pages fall.
    async fn stream(
        &self,
        search: &DirectorySearch,
        resolution: &Resolution,
        partition: Partition,
        term: Option<(String, String, bool)>,
        count: usize,
        after: Option<String>,
    ) -> Result<Page, ApiError> {
        let (from, to) = search
            .last_updated
            .as_ref()
            .map(|lu| lu.last_updated_bounds())
            .unwrap_or((None, None));
        let keyed_by_time = matches!(partition, Partition::Type(_));
        let mut after = after.map(SortKey);
        let mut found: Vec<(SortKey, Arc<ResourceRecord>)> = Vec::with_capacity(count + 1);
        let mut limit = count + 1;
        loop {
            let mut query = ListQuery::new(partition.clone(), limit);
            query.after = after.clone();
            if keyed_by_time {
                query.last_updated_from = from.clone();
                query.last_updated_to = to.clone();
            }
            let page = self.store.list(query).await?;
            for (key, record) in &page.entries {
                after = Some(key.clone());
                if let Some((param, wanted, exact)) = &term
                    && !first_matching_term(key, record, param, wanted, *exact)
                {
                    continue;
                }
                if !self.is_match(search, resolution, record) {
                    continue;
                }
                found.push((key.clone(), Arc::clone(record)));
                if found.len() > count {
                    found.truncate(count);
                    let next = found.last().map(|(k, _)| k.0.clone());
                    return Ok(Page {
                        records: found.into_iter().map(|(_, r)| r).collect(),
                        next,
                    });
                }
            }
            if !page.more {
                return Ok(Page {
                    records: found.into_iter().map(|(_, r)| r).collect(),
                    next: None,
                });
            }
            limit = LIST_BATCH;
        }
    }

    fn is_match(
        &self,
        search: &DirectorySearch,
        resolution: &Resolution,
        r: &ResourceRecord,
    ) -> bool {
        !r.deleted
            && r.resource_type == search.resource_type
            && search.matches(&r.id, &r.last_updated, &r.index, &resolution.resolved)
    }

    /// Every match of `search`, ordered, reading at most `cap` look-up entries.
    ///
    /// Keys first: the driver's entries are listed without their records, and every
    /// condition the keys decide is checked on them (the driver's own terms, a
    /// `_has` or `_id` set, codes and references probed as exact look-up entries,
    /// `near`'s distance from the position in its term). Records are read only when
    /// something is left that needs the stored index (a string, a system, a second
    /// chain, `_lastUpdated`); otherwise only the answered page is read, by the caller.
    async fn collect(
        &self,
        search: &DirectorySearch,
        resolution: &Resolution,
        driver: Driver,
        cap: usize,
    ) -> Result<Vec<(String, Candidate)>, ApiError> {
        let too_broad = || {
            ApiError::BadRequest(format!(
                "this {} search would consider more than {cap} candidates; add a more selective parameter",
                search.resource_type
            ))
        };
        let (param, terms, exact, from) = match driver {
            Driver::Ids(ids) => {
                let records = self.get_all(search.resource_type, &ids).await?;
                return Ok(self.decided_by_records(search, resolution, records));
            }
            Driver::Type => (String::new(), Vec::new(), true, None),
            Driver::Terms {
                param,
                terms,
                exact,
                from,
            } => (param, terms, exact, Some(from)),
        };
        let partitions: Vec<Partition> = match from {
            None => vec![Partition::Type(search.resource_type)],
            Some(_) => terms
                .iter()
                .map(|term| lookup(search.resource_type, &param, term, exact))
                .collect(),
        };
        let listed = self
            .list_keys_all(partitions, cap)
            .await?
            .ok_or_else(too_broad)?;
        // Each candidate once, with the terms it was listed under: (id, term) pairs,
        // borrowed from the listed pages, grouped by id (the order comes later).
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (i, pages) in listed.iter().enumerate() {
            for (key, id) in pages.iter().flat_map(|page| page.entries.iter()) {
                let term = entry_term(key);
                if from.is_some() && exact && terms.get(i).is_some_and(|t| t != term) {
                    continue;
                }
                pairs.push((id.as_str(), term));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let plan = KeyPlan::new(search, resolution, from);
        let mut candidates: Vec<Listed<'_>> = pairs
            .chunk_by(|a, b| a.0 == b.0)
            .filter(|held| plan.keeps_id(resolution, held[0].0))
            .collect();
        for (param, terms) in &plan.probes {
            candidates = self
                .probe(search.resource_type, param, terms, candidates)
                .await?;
        }
        if plan.needs_records {
            let ids: Vec<String> = candidates.iter().map(|held| held[0].0.to_owned()).collect();
            let records = self.get_all(search.resource_type, &ids).await?;
            return Ok(self.decided_by_records(search, resolution, records));
        }
        // Distances from the keys: `near`'s from the position in each term, a near
        // chain's from the nearest target the candidate was listed under.
        let mut unread = Vec::new();
        let mut out = Vec::with_capacity(candidates.len());
        for held in candidates {
            let id = held[0].0;
            let terms = held.iter().map(|(_, term)| *term);
            let mut distance = None;
            if let Some(near) = &search.near {
                match terms.clone().find_map(plan_net::geo::term_position) {
                    Some(p) => {
                        let d = plan_net::geo::distance_km([near.lat, near.lon], p);
                        if d > near.radius_km {
                            continue;
                        }
                        distance = Some(d);
                    }
                    None => {
                        unread.push(id.to_owned());
                        continue;
                    }
                }
            } else if let Some((_, distances)) = &resolution.distances {
                distance = terms
                    .filter_map(|t| t.split_once('/').and_then(|(_, id)| distances.get(id)))
                    .copied()
                    .reduce(f64::min);
            }
            let candidate = Candidate {
                id: id.to_owned(),
                distance,
                record: None,
            };
            out.push((distance_key(distance, id), candidate));
        }
        if !unread.is_empty() {
            let records = self.get_all(search.resource_type, &unread).await?;
            out.extend(self.decided_by_records(search, resolution, records));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Matches and orders records in memory against their stored index.
    fn decided_by_records(
        &self,
        search: &DirectorySearch,
        resolution: &Resolution,
        records: Vec<Arc<ResourceRecord>>,
    ) -> Vec<(String, Candidate)> {
        let mut seen = HashSet::new();
        let mut out: Vec<(String, Candidate)> = records
            .into_iter()
            .filter(|r| seen.insert(r.id.clone()) && self.is_match(search, resolution, r))
            .map(|r| {
                let distance = distance_of(search, resolution, &r);
                (
                    distance_key(distance, &r.id),
                    Candidate {
                        id: r.id.clone(),
                        distance,
                        record: Some(r),
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Keeps the candidates that hold one of `terms` exactly under `param`.
    async fn probe<'k>(
        &self,
        resource_type: ResourceType,
        param: &str,
        terms: &[String],
        candidates: Vec<Listed<'k>>,
    ) -> Result<Vec<Listed<'k>>, ApiError> {
        if candidates.is_empty() {
            return Ok(candidates);
        }
        // Boxed: listing a term is the rare path, and its store future (DynamoDB's
        // above all) would otherwise swell every search's state machine.
        let members = Box::pin(self.members_of_all(resource_type, param, terms));
        if let Some(sets) = members.await? {
            return Ok(candidates
                .into_iter()
                .filter(|held| sets.iter().any(|set| set.contains(held[0].0)))
                .collect());
        }
        let probes: Vec<(String, String)> = candidates
            .iter()
            .flat_map(|held| terms.iter().map(|t| (t.clone(), held[0].0.to_owned())))
            .collect();
        let mut answers = Vec::with_capacity(probes.len());
        for chunk in probes.chunks(PROBE_BATCH) {
            answers.extend(
                self.store
                    .lookup_contains(resource_type, param, chunk)
                    .await?,
            );
        }
        let per = terms.len().max(1);
        Ok(candidates
            .into_iter()
            .enumerate()
            .filter(|(i, _)| {
                answers
                    .get(i * per..(i + 1) * per)
                    .is_some_and(|a| a.iter().any(|found| *found))
            })
            .map(|(_, c)| c)
            .collect())
    }

    /// The members of every one of `terms`, when each is known in memory (or can be
    /// listed there): see [`Reads::members`].
    async fn members_of_all(
        &self,
        resource_type: ResourceType,
        param: &str,
        terms: &[String],
    ) -> Result<Option<Vec<Arc<Members>>>, ApiError> {
        let mut sets = Vec::with_capacity(terms.len());
        for term in terms {
            match self.store.members(resource_type, param, term).await? {
                Some(set) => sets.push(set),
                None => return Ok(None),
            }
        }
        Ok(Some(sets))
    }

    /// Reads the records of the candidates that have none yet; a candidate whose
    /// resource is gone (a load ended it since its keys were read) is dropped.
    async fn read_records(
        &self,
        resource_type: ResourceType,
        candidates: &mut Vec<Candidate>,
    ) -> Result<(), ApiError> {
        let missing: Vec<String> = candidates
            .iter()
            .filter(|c| c.record.is_none())
            .map(|c| c.id.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut records: HashMap<String, Arc<ResourceRecord>> = self
            .get_all(resource_type, &missing)
            .await?
            .into_iter()
            .filter(|r| !r.deleted)
            .map(|r| (r.id.clone(), r))
            .collect();
        for candidate in candidates.iter_mut() {
            if candidate.record.is_none() {
                candidate.record = records.remove(&candidate.id);
            }
        }
        candidates.retain(|c| c.record.is_some());
        Ok(())
    }

    /// Every key of each partition, in order, as the pages that hold them, or `None`
    /// past `cap` entries in all: one `list_keys` call per round for all partitions
    /// still being paged.
    async fn list_keys_all(
        &self,
        partitions: Vec<Partition>,
        cap: usize,
    ) -> Result<Option<Vec<Vec<Arc<KeyPage>>>>, ApiError> {
        let mut out: Vec<Vec<Arc<KeyPage>>> = vec![Vec::new(); partitions.len()];
        let mut pending: Vec<(usize, Option<SortKey>)> =
            (0..partitions.len()).map(|i| (i, None)).collect();
        let mut total = 0usize;
        while !pending.is_empty() {
            let queries = pending
                .iter()
                .map(|(i, after)| {
                    let mut query = ListQuery::new(partitions[*i].clone(), LIST_BATCH.min(cap + 1));
                    query.after = after.clone();
                    query
                })
                .collect();
            let pages = self.store.list_keys(queries).await?;
            let mut next = Vec::new();
            for ((i, _), page) in pending.iter().zip(pages) {
                total += page.entries.len();
                if total > cap {
                    return Ok(None);
                }
                if page.more {
                    next.push((*i, page.entries.last().map(|(k, _)| k.clone())));
                }
                out[*i].push(page);
            }
            pending = next;
        }
        Ok(Some(out))
    }

    /// Every entry of a partition, or `None` past `cap` entries.
    async fn list_all(
        &self,
        partition: Partition,
        cap: usize,
    ) -> Result<Option<Vec<(SortKey, Arc<ResourceRecord>)>>, ApiError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let mut query = ListQuery::new(partition.clone(), LIST_BATCH.min(cap + 1));
            query.after = after;
            let page = self.store.list(query).await?;
            after = page.entries.last().map(|(k, _)| k.clone());
            out.extend(page.entries.iter().cloned());
            if out.len() > cap {
                return Ok(None);
            }
            if !page.more {
                return Ok(Some(out));
            }
        }
    }

    async fn get_all(
        &self,
        resource_type: ResourceType,
        ids: &[String],
    ) -> Result<Vec<Arc<ResourceRecord>>, ApiError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(GET_BATCH) {
            let keys: Vec<(ResourceType, String)> =
                chunk.iter().map(|id| (resource_type, id.clone())).collect();
            out.extend(self.store.get_many(&keys).await?);
        }
        Ok(out)
    }

    /// Resolves each chain to the target ids its inner search finds, and each `_has`
    /// to the ids its inner matches refer to, with at most [`MAX_CHAIN_IDS`] each.
    fn resolve<'b>(&'b self, search: &'b DirectorySearch) -> Boxed<'b, Resolution> {
        Box::pin(async move {
            let mut resolution = Resolution::default();
            for (i, chain) in search.chains.iter().enumerate() {
                let inner = self
                    .inner_matches(&chain.inner, &describe_chain(search, i))
                    .await?;
                if chain.inner.near.is_some() {
                    let distances = inner
                        .iter()
                        .filter_map(|(_, c)| Some((c.id.clone(), c.distance?)))
                        .collect();
                    resolution.distances = Some((i, distances));
                }
                resolution
                    .resolved
                    .chains
                    .push(inner.into_iter().map(|(_, c)| c.id).collect());
            }
            for has in &search.has {
                let label = format!("_has:{}:{}", has.source, has.param.name);
                let inner = self.inner_matches(&has.inner, &label).await?;
                let mut inner: Vec<Candidate> = inner.into_iter().map(|(_, c)| c).collect();
                self.read_records(has.inner.resource_type, &mut inner)
                    .await?;
                let ids: HashSet<String> = inner
                    .iter()
                    .filter_map(|c| c.record.as_ref())
                    .flat_map(|r| r.index.references.iter())
                    .filter(|(p, r)| p == has.param.name && r.resource_type == search.resource_type)
                    .map(|(_, r)| r.id.clone())
                    .collect();
                resolution.resolved.has.push(ids);
            }
            Ok(resolution)
        })
    }

    fn inner_matches<'b>(
        &'b self,
        inner: &'b DirectorySearch,
        label: &'b str,
    ) -> Boxed<'b, Vec<(String, Candidate)>> {
        Box::pin(async move {
            let resolution = self.resolve(inner).await?;
            let driver = driver(inner, &resolution)?;
            let found = self
                .collect(inner, &resolution, driver, MAX_CANDIDATES)
                .await?;
            if found.len() > MAX_CHAIN_IDS {
                return Err(ApiError::BadRequest(format!(
                    "{label} matches more than {MAX_CHAIN_IDS} {} resources; narrow it",
                    inner.resource_type
                )));
            }
            Ok(found)
        })
    }

    /// `_include`, `_revinclude` and `_include:iterate` for one page of matches.
    pub async fn included(
        &self,
        search: &DirectorySearch,
        matches: &[Arc<ResourceRecord>],
    ) -> Result<Vec<Arc<ResourceRecord>>, ApiError> {
        let mut seen: HashSet<(ResourceType, String)> = matches
            .iter()
            .map(|r| (r.resource_type, r.id.clone()))
            .collect();
        let wanted: Vec<Reference> = search
            .includes
            .iter()
            .flat_map(|spec| matches.iter().flat_map(move |r| include_targets(spec, r)))
            .collect();
        let mut included = self.fetch(wanted, &mut seen).await?;
        included.extend(self.revincluded(search, matches, &mut seen).await?);
        let mut frontier: Vec<Arc<ResourceRecord>> =
            matches.iter().chain(included.iter()).cloned().collect();
        for _round in 0..3 {
            let wanted: Vec<Reference> = search
                .iterate_includes
                .iter()
                .flat_map(|spec| frontier.iter().flat_map(move |r| include_targets(spec, r)))
                .collect();
            if wanted.is_empty() {
                break;
            }
            frontier = self.fetch(wanted, &mut seen).await?;
            if frontier.is_empty() {
                break;
            }
            included.extend(frontier.iter().cloned());
        }
        Ok(included)
    }

    async fn fetch(
        &self,
        references: Vec<Reference>,
        seen: &mut HashSet<(ResourceType, String)>,
    ) -> Result<Vec<Arc<ResourceRecord>>, ApiError> {
        let keys: Vec<(ResourceType, String)> = references
            .into_iter()
            .map(|r| (r.resource_type, r.id))
            .filter(|k| seen.insert(k.clone()))
            .collect();
        let mut out = Vec::new();
        for chunk in keys.chunks(GET_BATCH) {
            out.extend(
                self.store
                    .get_many(chunk)
                    .await?
                    .into_iter()
                    .filter(|r| !r.deleted),
            );
        }
        Ok(out)
    }

    /// Resources that refer to the matches, through the look-up partition of the
    /// referring parameter (the reference `Type/id` is its term).
    async fn revincluded(
        &self,
        search: &DirectorySearch,
        matches: &[Arc<ResourceRecord>],
        seen: &mut HashSet<(ResourceType, String)>,
    ) -> Result<Vec<Arc<ResourceRecord>>, ApiError> {
        let mut out = Vec::new();
        for spec in &search.revincludes {
            for record in matches {
                let term = format!("{}/{}", record.resource_type, record.id);
                let partition = lookup(spec.source, spec.param, &term, true);
                let entries = self
                    .list_all(partition, MAX_REVINCLUDES)
                    .await?
                    .unwrap_or_default();
                for (key, r) in entries {
                    if out.len() >= MAX_REVINCLUDES {
                        return Ok(out);
                    }
                    if entry_term(&key) == term
                        && !r.deleted
                        && seen.insert((r.resource_type, r.id.clone()))
                    {
                        out.push(r);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn describe_chain(search: &DirectorySearch, i: usize) -> String {
    search
        .chains
        .get(i)
        .map_or_else(String::new, |c| format!("the chain {}.…", c.param.name))
}

/// Picks the most selective key-based access path: named ids, then a `_has` set, then
/// the smallest chain set, then a reference, token or string criterion, then `near`'s
/// cells, then the whole type.
fn driver(search: &DirectorySearch, resolution: &Resolution) -> Result<Driver, ApiError> {
    if let Some(ids) = search.ids() {
        if ids.len() > MAX_IDS {
            return Err(ApiError::BadRequest(format!(
                "_id may name at most {MAX_IDS} ids"
            )));
        }
        return Ok(Driver::Ids(ids));
    }
    if let Some(ids) = resolution.resolved.has.iter().min_by_key(|s| s.len()) {
        let mut ids: Vec<String> = ids.iter().cloned().collect();
        ids.sort();
        return Ok(Driver::Ids(ids));
    }
    if let Some((i, ids)) = resolution
        .resolved
        .chains
        .iter()
        .enumerate()
        .min_by_key(|(_, s)| s.len())
    {
        let chain = &search.chains[i];
        let mut terms: Vec<String> = ids
            .iter()
            .map(|id| format!("{}/{id}", chain.target))
            .collect();
        terms.sort();
        return Ok(Driver::Terms {
            param: chain.param.name.to_owned(),
            terms,
            exact: true,
            from: Origin::Chain(i),
        });
    }
    let best = search
        .criteria
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let rank = match c.param.kind {
                Kind::Reference => 0,
                Kind::Token => 1,
                Kind::String => 2,
                _ => return None,
            };
            DirectorySearch::lookup_terms(c).map(|terms| (rank, terms.len(), i, terms))
        })
        .min_by_key(|(rank, n, _, _)| (*rank, *n));
    if let Some((_, _, i, mut terms)) = best {
        let criterion = &search.criteria[i];
        terms.sort();
        terms.dedup();
        let exact = criterion.param.kind != Kind::String
            && !criterion
                .values
                .iter()
                .any(|t| matches!(t, Test::StartsWith(_)));
        return Ok(Driver::Terms {
            param: criterion.param.name.to_owned(),
            terms,
            exact,
            from: Origin::Criterion(i),
        });
    }
    if let Some(near) = search.near {
        return Ok(Driver::Terms {
            param: "near".to_owned(),
            terms: plan_net::geo::cover(near.lat, near.lon, near.radius_km),
            exact: false,
            from: Origin::Near,
        });
    }
    Ok(Driver::Type)
}

/// The look-up partition of `param`'s entries for `term`: exactly that term's, or
/// (a string parameter's `starts with`) every term beginning with it. Without the
/// exact prefix, `Location/loc-1` would also read the entries of `loc-10`, `loc-100`,
/// … only to drop them, and could run into the candidate cap.
fn lookup(resource_type: ResourceType, param: &str, term: &str, exact: bool) -> Partition {
    Partition::Lookup {
        resource_type,
        param: param.to_owned(),
        prefix: if exact {
            fhir_store::keys::exact_term_prefix(term)
        } else {
            term.to_owned()
        },
    }
}

/// The term of a look-up entry's sort key (`{term}\u{1}{id}`).
fn entry_term(key: &SortKey) -> &str {
    key.0.rsplit_once('\u{1}').map_or("", |(term, _)| term)
}

/// In a streamed look-up partition, whether this entry is the one that counts for
/// its resource: the exact term, or the smallest of its terms with the prefix.
fn first_matching_term(
    key: &SortKey,
    record: &ResourceRecord,
    param: &str,
    wanted: &str,
    exact: bool,
) -> bool {
    let term = entry_term(key);
    if exact {
        return term == wanted;
    }
    record
        .index
        .lookup_terms
        .iter()
        .filter(|(p, t)| p == param && t.starts_with(wanted))
        .map(|(_, t)| t.as_str())
        .min()
        .is_some_and(|first| first == term)
}

/// The distance that orders a record: from the searched point (`near`), else from
/// the nearest target of a near chain; `None` when neither applies.
fn distance_of(
    search: &DirectorySearch,
    resolution: &Resolution,
    record: &ResourceRecord,
) -> Option<f64> {
    match (&search.near, &resolution.distances) {
        (Some(near), _) => near.distance_km(&record.index),
        (None, Some((i, distances))) => {
            let param = search.chains[*i].param.name;
            record
                .index
                .references
                .iter()
                .filter(|(p, _)| p == param)
                .filter_map(|(_, r)| distances.get(&r.id).copied())
                .reduce(f64::min)
        }
        (None, None) => None,
    }
}

/// Nearest first (metres, zero-padded) when a distance applies, else by id.
fn distance_key(distance: Option<f64>, id: &str) -> String {
    match distance {
        Some(d) => format!("{:012}#{id}", (d * 1000.0).round() as u64),
        None => id.to_owned(),
    }
}

/// What the keys of a collected search's candidates can decide, and what is left.
struct KeyPlan {
    /// Exact look-up terms (any of them) each candidate must hold, per parameter.
    probes: Vec<(String, Vec<String>)>,
    /// Something only the stored index decides: read every candidate's record.
    needs_records: bool,
    /// What `_id` allows, if it is searched.
    ids: Option<Vec<String>>,
}

impl KeyPlan {
    fn new(search: &DirectorySearch, resolution: &Resolution, from: Option<Origin>) -> KeyPlan {
        let mut plan = KeyPlan {
            probes: Vec::new(),
            needs_records: search.last_updated.is_some(),
            ids: search.ids(),
        };
        for (i, criterion) in search.criteria.iter().enumerate() {
            if criterion.param.kind == Kind::Id {
                continue;
            }
            if from == Some(Origin::Criterion(i))
                && DirectorySearch::decided_by_lookup_terms(criterion)
            {
                continue;
            }
            match DirectorySearch::exact_terms(criterion) {
                Some(terms) => plan.probes.push((criterion.param.name.to_owned(), terms)),
                None => plan.needs_records = true,
            }
        }
        for i in 0..search.chains.len() {
            if from != Some(Origin::Chain(i)) {
                plan.needs_records = true;
            }
        }
        if search.near.is_some() && from != Some(Origin::Near) {
            plan.needs_records = true;
        }
        if let (None, Some((i, _))) = (&search.near, &resolution.distances)
            && from != Some(Origin::Chain(*i))
        {
            plan.needs_records = true;
        }
        plan
    }

    /// The in-memory conditions on the id alone: `_id` and `_has`.
    fn keeps_id(&self, resolution: &Resolution, id: &str) -> bool {
        self.ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|i| i == id))
            && resolution.resolved.has.iter().all(|ids| ids.contains(id))
    }
}

fn include_targets(spec: &IncludeSpec, record: &ResourceRecord) -> Vec<Reference> {
    if record.resource_type != spec.source {
        return Vec::new();
    }
    let listed = include_table(spec.source);
    record
        .index
        .references
        .iter()
        .filter(|(p, _)| match spec.param {
            Some(want) => p == want,
            None => listed.iter().any(|i| i.param == p),
        })
        .filter(|(_, r)| spec.target.is_none_or(|t| t == r.resource_type))
        .map(|(_, r)| r.clone())
        .collect()
}
