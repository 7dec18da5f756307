//! [`ResourceStore`] on one DynamoDB table. The key design, every access pattern and
//! the Query serving it are in `infra/dynamodb-keys.md`; keys come from
//! [`fhir_store::keys`], shared with the redb adapter.
//!
//! * `put`: one consistent GetItem of the current item's bookkeeping, then ONE
//!   TransactWriteItems: current item (conditioned on the version read), version item,
//!   body chunks, look-up entries added and removed. The partition entry is the current
//!   item's sparse `gsi1pk`/`gsi1sk`, so it changes in the same transaction.
//! * reads: GetItem / BatchGetItem (consistent) and Query on keys or `gsi1`. Never Scan.
//! * retries: throttling and transient errors are retried by the SDK client's retry
//!   config (standard mode; build the client with it). A cancelled transaction is not
//!   retried: `ConditionalCheckFailed`/`TransactionConflict` become
//!   [`StoreError::Conflict`], which `update_with` retries, and `WriteCondition::Always`
//!   retries here.
//! * key-value records ([`fhir_store::KeyValueStore`], in `kv.rs`): `K#{namespace}`
//!   partitions of the same table, one conditional UpdateItem/DeleteItem per operation,
//!   expiry in the table's TTL attribute `expires_at`.

mod item;
mod kv;
mod table;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use fhir::ResourceType;
use fhir_store::keys::{self, EntryKey, SortRange};
use fhir_store::version::{Previous, next_version};
use fhir_store::{
    KeyPage, ListPage, ListQuery, Partition, ResourceRecord, ResourceStore, ResourceWrite, SortKey,
    StoreError, StoreResult, WriteCondition,
};
use futures_util::{StreamExt, TryStreamExt};
use item::{Item, PackedBody, StoredBody, StoredRecord};

pub use item::{CHUNK_SIZE, INLINE_LIMIT, MAX_CHUNKS};
pub use table::{GSI1, TABLE_DEFINITION, TableError, create_table};

/// DynamoDB's limits on one TransactWriteItems (we stay a little under 4 MB).
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4_000_000;
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_KEYS: usize = 100;
/// Rounds of UnprocessedKeys before giving up, with exponential backoff from 25 ms.
const BATCH_GET_ROUNDS: u32 = 8;
/// Requests in flight for one batch call (`list_keys`, `put_many`).
const IN_FLIGHT: usize = 16;
/// How often a `WriteCondition::Always` put re-reads and retries after losing a race.
const ALWAYS_ATTEMPTS: u32 = 16;

/// The DynamoDB adapter. Cheap to clone (the SDK client is an `Arc`).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
}

impl DynamoStore {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: Arc::from(table_name.into()),
        }
    }

    /// What the next version builds on: the current item's version, instant and owned
    /// look-up entries. Projected, so a large body is not downloaded for a write.
    async fn previous(&self, pk: &str) -> StoreResult<Option<(Previous, Vec<EntryKey>)>> {
        let output = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(item::key(pk, item::CURRENT_SK.to_owned())))
            .consistent_read(true)
            .projection_expression("#v, #lu, #lk")
            .expression_attribute_names("#v", item::VERSION)
            .expression_attribute_names("#lu", item::LAST_UPDATED)
            .expression_attribute_names("#lk", item::LOOKUPS)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(found) = output.item() else {
            return Ok(None);
        };
        let last_updated = fhir::Instant::parse(item::get_s(found, item::LAST_UPDATED)?)
            .map_err(|_| StoreError::Corrupt("current item lastUpdated".into()))?;
        let previous = Previous {
            version_id: item::get_n(found, item::VERSION)?,
            last_updated,
        };
        Ok(Some((previous, item::decode_lookups(found)?)))
    }

    /// One attempt: read, check, build, and write in one transaction.
    async fn try_put(&self, write: &ResourceWrite) -> StoreResult<ResourceRecord> {
        let pk = keys::resource_key(write.resource_type, &write.id);
        let previous = self.previous(&pk).await?;
        let record = next_version(write, previous.as_ref().map(|(p, _)| p))?;
        let old_lookups = previous
            .as_ref()
            .map(|(_, l)| l.as_slice())
            .unwrap_or_default();
        let items = self.transaction_items(
            &pk,
            &record,
            previous.as_ref().map(|(p, _)| p.version_id),
            old_lookups,
        )?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| transaction_error(e, &record))?;
        Ok(record)
    }

    fn transaction_items(
        &self,
        pk: &str,
        record: &ResourceRecord,
        previous_version: Option<u64>,
        old_lookups: &[EntryKey],
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let index_json = serde_json::to_string(&record.index)
            .map_err(|e| StoreError::Backend(format!("search index: {e}")))?;
        let body = item::pack_body(&record.body, index_json.len())?;
        let partition = keys::partition_entry(record);
        let new_lookups: Vec<EntryKey> = keys::lookup_entries(record).into_iter().collect();

        let mut current =
            item::record_item(pk, item::CURRENT_SK.to_owned(), record, &index_json, &body);
        item::add_current_attributes(&mut current, partition.as_ref(), &new_lookups);
        let version = item::record_item(
            pk,
            item::version_sk(record.version_id),
            record,
            &index_json,
            &body,
        );

        let mut items = vec![
            self.current_put(current, previous_version)?,
            self.put_if_absent(version)?,
        ];
        if let PackedBody::Chunked(chunks) = &body {
            for chunk in item::chunk_items(pk, record.version_id, chunks) {
                items.push(self.put_item(chunk)?);
            }
        }
        let (old, new): (BTreeSet<&EntryKey>, BTreeSet<&EntryKey>) =
            (old_lookups.iter().collect(), new_lookups.iter().collect());
        for gone in old.difference(&new) {
            items.push(self.delete_item(gone)?);
        }
        for added in new.difference(&old) {
            items.push(self.put_item(item::lookup_item(
                added,
                record.resource_type,
                &record.id,
            ))?);
        }
        check_transaction_limits(&items, &body, &index_json, &new_lookups)?;
        Ok(items)
    }

    /// The current item, written only over the version this write was built on: the
    /// optimistic lock that makes concurrent writers conflict instead of losing updates.
    fn current_put(
        &self,
        current: Item,
        previous_version: Option<u64>,
    ) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(current));
        let put = match previous_version {
            Some(version) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", item::VERSION)
                .expression_attribute_values(":v", item::n(version)),
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", item::PK),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(backend)?)
            .build())
    }

    /// Versions are immutable: never overwrite one.
    fn put_if_absent(&self, version: Item) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(version))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", item::PK)
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn put_item(&self, value: Item) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&*self.table)
            .set_item(Some(value))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_item(&self, entry: &EntryKey) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&*self.table)
            .set_key(Some(item::key(&entry.pk, entry.sk.clone())))
            .build()
            .map_err(backend)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn get_item(&self, pk: &str, sk: String) -> StoreResult<Option<ResourceRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(item::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        match output.item() {
            Some(found) => Ok(Some(self.resolve(item::decode_record(found)?).await?)),
            None => Ok(None),
        }
    }

    /// Fills in a chunked body: one consistent Query over the version's chunk items.
    async fn resolve(&self, stored: StoredRecord) -> StoreResult<ResourceRecord> {
        let count = match &stored.body {
            StoredBody::Inline(body) => {
                let body = Arc::clone(body);
                return Ok(stored.with_body(body));
            }
            StoredBody::Chunked { count } => *count,
        };
        let pk = keys::resource_key(stored.resource_type, &stored.id);
        let everything = SortRange {
            low: None,
            high: None,
        };
        let mut compressed = Vec::with_capacity(count * CHUNK_SIZE);
        let mut found = 0;
        let mut start = None;
        loop {
            let output = self
                .query_keys(
                    item::PK,
                    item::SK,
                    &pk,
                    &everything,
                    Some(item::chunk_prefix(stored.version_id)),
                )
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for chunk in output.items() {
                compressed.extend_from_slice(item::decode_chunk(chunk)?);
                found += 1;
            }
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        if found != count {
            return Err(StoreError::Corrupt(format!(
                "{pk} version {}: {found} of {count} chunks",
                stored.version_id
            )));
        }
        let body = item::inflate(&compressed)?;
        Ok(stored.with_body(body))
    }

    /// A Query on one partition's key and an inclusive sort-key range (or a prefix).
    fn query_keys(
        &self,
        pk_name: &str,
        sk_name: &str,
        pk: &str,
        range: &SortRange,
        prefix: Option<String>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut condition = "#pk = :pk".to_owned();
        let mut query = self
            .client
            .query()
            .table_name(&*self.table)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", item::s(pk));
        let sk_condition = match (prefix, &range.low, &range.high) {
            (Some(prefix), _, _) => Some(("begins_with(#sk, :lo)", Some(prefix), None)),
            (None, Some(low), Some(high)) => Some((
                "#sk BETWEEN :lo AND :hi",
                Some(low.clone()),
                Some(high.clone()),
            )),
            (None, Some(low), None) => Some(("#sk >= :lo", Some(low.clone()), None)),
            (None, None, Some(high)) => Some(("#sk <= :hi", None, Some(high.clone()))),
            (None, None, None) => None,
        };
        if let Some((expression, low, high)) = sk_condition {
            condition = format!("{condition} AND {expression}");
            query = query.expression_attribute_names("#sk", sk_name);
            if let Some(low) = low {
                query = query.expression_attribute_values(":lo", AttributeValue::S(low));
            }
            if let Some(high) = high {
                query = query.expression_attribute_values(":hi", AttributeValue::S(high));
            }
        }
        query.key_condition_expression(condition)
    }

    /// Reads up to `want` items of one partition range, following DynamoDB's 1 MB pages.
    async fn query_range(
        &self,
        query: &ListQuery,
        range: &SortRange,
        want: usize,
    ) -> StoreResult<Vec<Item>> {
        self.query_range_projected(query, range, want, false).await
    }

    /// [`Self::query_range`], optionally reading only each item's sort key and id.
    async fn query_range_projected(
        &self,
        query: &ListQuery,
        range: &SortRange,
        want: usize,
        keys_only: bool,
    ) -> StoreResult<Vec<Item>> {
        let pk = keys::partition_key(&query.partition);
        let (pk_name, sk_name, index) = match query.partition {
            Partition::Lookup { .. } => (item::PK, item::SK, None),
            Partition::Compartment { .. } | Partition::Type(_) => {
                (item::GSI1_PK, item::GSI1_SK, Some(GSI1))
            }
        };
        let mut items = Vec::new();
        let mut start = None;
        while items.len() < want {
            let limit = i32::try_from(want - items.len()).unwrap_or(i32::MAX);
            let mut request = self.query_keys(pk_name, sk_name, &pk, range, None);
            if keys_only {
                request = request
                    .projection_expression("#sk, #id")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_names("#id", item::ID);
            }
            let output = request
                .set_index_name(index.map(str::to_owned))
                // A GSI cannot be read consistently; look-up entries on the table can.
                .consistent_read(index.is_none())
                .scan_index_forward(!query.descending)
                .limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            items.extend(output.items().iter().cloned());
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        Ok(items)
    }

    async fn list_time_partition(
        &self,
        items: Vec<Item>,
    ) -> StoreResult<Vec<(SortKey, ResourceRecord)>> {
        let mut entries = Vec::with_capacity(items.len());
        for found in &items {
            let sort_key = SortKey(item::get_s(found, item::GSI1_SK)?.to_owned());
            entries.push((sort_key, self.resolve(item::decode_record(found)?).await?));
        }
        Ok(entries)
    }

    async fn list_lookup(&self, items: Vec<Item>) -> StoreResult<Vec<(SortKey, ResourceRecord)>> {
        let targets: Vec<(SortKey, (ResourceType, String))> = items
            .iter()
            .map(|found| {
                Ok((
                    SortKey(item::get_s(found, item::SK)?.to_owned()),
                    item::decode_target(found)?,
                ))
            })
            .collect::<StoreResult<_>>()?;
        let keys: Vec<(ResourceType, String)> = targets.iter().map(|(_, k)| k.clone()).collect();
        let current: HashMap<(ResourceType, String), ResourceRecord> = self
            .get_many(&keys)
            .await?
            .into_iter()
            .map(|r| ((r.resource_type, r.id.clone()), r))
            .collect();
        Ok(targets
            .into_iter()
            .filter_map(|(sort_key, target)| {
                current
                    .get(&target)
                    .filter(|r| !r.deleted)
                    .map(|r| (sort_key, r.clone()))
            })
            .collect())
    }

    /// One page of keys of one query (see [`ResourceStore::list_keys`]).
    async fn list_keys_one(&self, query: ListQuery) -> StoreResult<KeyPage> {
        let range = keys::sort_range(&query);
        if range.is_empty() {
            return Ok(KeyPage::default());
        }
        let mut items = self
            .query_range_projected(&query, &range, query.limit.saturating_add(1), true)
            .await?;
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        let sk_name = match query.partition {
            Partition::Lookup { .. } => item::SK,
            Partition::Compartment { .. } | Partition::Type(_) => item::GSI1_SK,
        };
        let entries = items
            .iter()
            .map(|found| {
                Ok((
                    SortKey(item::get_s(found, sk_name)?.to_owned()),
                    item::get_s(found, item::ID)?.to_owned(),
                ))
            })
            .collect::<StoreResult<_>>()?;
        Ok(KeyPage { entries, more })
    }

    /// BatchGetItem of up to 100 keys, repeating UnprocessedKeys with exponential backoff.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        self.batch_get_projected(keys, None).await
    }

    /// [`Self::batch_get`], reading only the attributes of `projection` when given.
    async fn batch_get_projected(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
    ) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut pending = keys;
        for round in 0..BATCH_GET_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true);
            if let Some(projection) = projection {
                request = request
                    .projection_expression(projection)
                    .expression_attribute_names("#pk", item::PK)
                    .expression_attribute_names("#sk", item::SK);
            }
            let request = request.build().map_err(backend)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&*self.table, request)
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", e))?;
            if let Some(items) = output.responses().and_then(|r| r.get(&*self.table)) {
                found.extend(items.iter().cloned());
            }
            pending = output
                .unprocessed_keys()
                .and_then(|u| u.get(&*self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::Backend(format!(
            "BatchGetItem: {} keys still unprocessed after {BATCH_GET_ROUNDS} rounds",
            pending.len()
        )))
    }
}

impl ResourceStore for DynamoStore {
    async fn put(&self, write: ResourceWrite) -> StoreResult<ResourceRecord> {
        let attempts = if write.condition == WriteCondition::Always {
            ALWAYS_ATTEMPTS
        } else {
            1
        };
        let mut outcome = self.try_put(&write).await;
        for attempt in 1..attempts {
            match outcome {
                Err(StoreError::Conflict { .. }) => {
                    fhir_store::conflict_backoff(attempt).await;
                    outcome = self.try_put(&write).await;
                }
                done => return done,
            }
        }
        outcome
    }

    async fn get(
        &self,
        resource_type: ResourceType,
        id: &str,
    ) -> StoreResult<Option<ResourceRecord>> {
        self.get_item(
            &keys::resource_key(resource_type, id),
            item::CURRENT_SK.to_owned(),
        )
        .await
    }

    async fn get_version(
        &self,
        resource_type: ResourceType,
        id: &str,
        version_id: u64,
    ) -> StoreResult<Option<ResourceRecord>> {
        self.get_item(
            &keys::resource_key(resource_type, id),
            item::version_sk(version_id),
        )
        .await
    }

    async fn get_many(&self, keys: &[(ResourceType, String)]) -> StoreResult<Vec<ResourceRecord>> {
        let mut seen = BTreeSet::new();
        let wanted: Vec<String> = keys
            .iter()
            .map(|(t, id)| keys::resource_key(*t, id))
            .filter(|pk| seen.insert(pk.clone()))
            .collect();
        let mut by_pk: HashMap<String, Item> = HashMap::with_capacity(wanted.len());
        for batch in wanted.chunks(BATCH_GET_KEYS) {
            let request = batch
                .iter()
                .map(|pk| item::key(pk, item::CURRENT_SK.to_owned()))
                .collect();
            for found in self.batch_get(request).await? {
                by_pk.insert(item::get_s(&found, item::PK)?.to_owned(), found);
            }
        }
        let mut records = Vec::with_capacity(by_pk.len());
        for pk in &wanted {
            if let Some(found) = by_pk.get(pk) {
                records.push(self.resolve(item::decode_record(found)?).await?);
            }
        }
        Ok(records)
    }

    async fn list(&self, query: ListQuery) -> StoreResult<ListPage> {
        let range = keys::sort_range(&query);
        if range.is_empty() {
            return Ok(ListPage {
                entries: Vec::new(),
                more: false,
            });
        }
        let mut items = self
            .query_range(&query, &range, query.limit.saturating_add(1))
            .await?;
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        let entries = match query.partition {
            Partition::Lookup { .. } => self.list_lookup(items).await?,
            Partition::Compartment { .. } | Partition::Type(_) => {
                self.list_time_partition(items).await?
            }
        };
        Ok(ListPage { entries, more })
    }

    async fn list_keys(&self, queries: Vec<ListQuery>) -> StoreResult<Vec<KeyPage>> {
        futures_util::stream::iter(queries.into_iter().map(|q| self.list_keys_one(q)))
            .buffered(IN_FLIGHT)
            .try_collect()
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
            .map(|(term, id)| keys::term_sort_key(term, id).0)
            .collect();
        let mut distinct: Vec<&String> = wanted.iter().collect();
        distinct.sort();
        distinct.dedup();
        let mut found: BTreeSet<String> = BTreeSet::new();
        for batch in distinct.chunks(BATCH_GET_KEYS) {
            let request = batch
                .iter()
                .map(|sk| item::key(&pk, (*sk).clone()))
                .collect();
            for hit in self.batch_get_projected(request, Some("#pk, #sk")).await? {
                found.insert(item::get_s(&hit, item::SK)?.to_owned());
            }
        }
        Ok(wanted.iter().map(|sk| found.contains(sk)).collect())
    }

    async fn put_many(
        &self,
        writes: Vec<ResourceWrite>,
    ) -> StoreResult<Vec<StoreResult<ResourceRecord>>> {
        // One transaction per resource (its current item, version and look-up entries
        // change together, conditioned on the version read, as `put`); several in flight.
        let outcomes: Vec<StoreResult<ResourceRecord>> = futures_util::stream::iter(
            writes.into_iter().map(|w| async move { self.put(w).await }),
        )
        .buffered(IN_FLIGHT)
        .collect()
        .await;
        outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Err(StoreError::Conflict { .. }) | Ok(_) => Ok(outcome),
                Err(other) => Err(other),
            })
            .collect()
    }
}

/// Refuses a transaction DynamoDB would reject, with a message that says which limit.
fn check_transaction_limits(
    items: &[TransactWriteItem],
    body: &PackedBody,
    index_json: &str,
    lookups: &[EntryKey],
) -> StoreResult<()> {
    if items.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::Backend(format!(
            "write needs {} items in one transaction (DynamoDB allows {MAX_TRANSACTION_ITEMS}): too many look-up term changes",
            items.len()
        )));
    }
    let lookup_bytes: usize = lookups
        .iter()
        .map(|e| 2 * (e.pk.len() + e.sk.len()) + 64)
        .sum();
    let bytes = body.transaction_bytes() + 2 * index_json.len() + lookup_bytes + items.len() * 256;
    if bytes > MAX_TRANSACTION_BYTES {
        return Err(StoreError::Backend(format!(
            "write needs about {bytes} bytes in one transaction (DynamoDB allows 4 MB)"
        )));
    }
    Ok(())
}

/// A cancelled transaction whose reasons include a failed condition or a concurrent
/// transaction on the same item lost an optimistic race: that is a Conflict.
fn transaction_error<R: std::fmt::Debug>(
    error: SdkError<TransactWriteItemsError, R>,
    record: &ResourceRecord,
) -> StoreError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        let lost_race = cancelled.cancellation_reasons().iter().any(|r| {
            matches!(
                r.code(),
                Some("ConditionalCheckFailed" | "TransactionConflict")
            )
        });
        if lost_race {
            return StoreError::Conflict {
                resource_type: record.resource_type,
                id: record.id.clone(),
            };
        }
    }
    sdk_error("TransactWriteItems", error)
}

fn sdk_error<E, R>(operation: &str, error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(format!(
        "DynamoDB {operation}: {}",
        DisplayErrorContext(&error)
    ))
}

fn backend(error: impl Display) -> StoreError {
    StoreError::Backend(format!("DynamoDB request: {error}"))
}
