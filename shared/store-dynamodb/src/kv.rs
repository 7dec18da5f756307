//! [`KeyValueStore`] on the same table: one partition per namespace, `pk = K#{namespace}`,
//! `sk = key` (see `infra/dynamodb-keys.md`).
//!
//! Every operation is ONE request (increment: usually one, two when a counter starts),
//! made atomic by a condition expression that compares `expires_at` with the caller's
//! clock, so expired items are treated as absent long before the TTL sweeper deletes
//! them:
//!
//! * `insert`: UpdateItem if `attribute_not_exists(pk) OR expires_at <= :now`
//! * `put`: UpdateItem without condition; `replace`: UpdateItem if `vid = :v AND live`
//! * `take`: DeleteItem if `attribute_exists(pk) AND live`, ReturnValues ALL_OLD, so of
//!   concurrent callers only the one whose delete succeeded gets the record
//! * `increment`: UpdateItem `ADD n :delta` if the live record is a counter with room;
//!   otherwise a restart (`SET n = :delta` if absent or expired); a live non-counter
//!   is refused
//! * `get`: consistent GetItem; `list`: consistent Query `begins_with(sk, :prefix)`
//!   with a filter on `expires_at`, paged until `limit` live records
//!
//! Writes use UpdateItem (not PutItem) so that `ADD vid :one` bumps the stored version,
//! live or expired, without reading it first.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use fhir_store::keys::{self, SortRange};
use fhir_store::kv::{self, KvEntry, WriteWhen};
use fhir_store::{KeyValueStore, StoreError, StoreResult};
use serde_json::Value;

use crate::item::{self, Item};
use crate::{DynamoStore, sdk_error};

/// How often `increment` retries when the record changes between its add and restart
/// attempts (another caller created, expired or deleted it in between).
const INCREMENT_ATTEMPTS: u32 = 16;

/// The placeholders and values of one request's expressions. DynamoDB rejects names and
/// values that no expression uses, so each fragment adds exactly what it uses.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    /// `#attribute`, registered.
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `:label`, registered with `value`.
    fn value(&mut self, label: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{label}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// Live at `now`: no expiry, or a later one.
    fn live(&mut self, now: i64) -> String {
        let exp = self.name(item::EXPIRES_AT);
        let now = self.value("now", number(now));
        format!("(attribute_not_exists({exp}) OR {exp} > {now})")
    }

    /// Nothing stored, or only an expired record.
    fn absent_or_expired(&mut self, now: i64) -> String {
        let pk = self.name(item::PK);
        let exp = self.name(item::EXPIRES_AT);
        let now = self.value("now", number(now));
        format!("(attribute_not_exists({pk}) OR {exp} <= {now})")
    }

    /// [`WriteWhen`] as a condition (`None`: unconditional); the same rule as
    /// [`WriteWhen::decide`], judged by DynamoDB on the stored item.
    fn allows(&mut self, when: WriteWhen, now: i64) -> Option<String> {
        match when {
            WriteWhen::Always => None,
            WriteWhen::AbsentOrExpired => Some(self.absent_or_expired(now)),
            WriteWhen::LiveVersion(expected) => {
                let vid = self.name(item::VERSION);
                let expected = self.value("expected", item::n(expected));
                Some(format!("{vid} = {expected} AND {}", self.live(now)))
            }
        }
    }

    /// Sets the value (in `n` or `j`, removing the other) and the expiry (removing it
    /// when `None`), and bumps the version.
    fn write(&mut self, value: (&str, AttributeValue), expires_at: Option<i64>) -> String {
        let (attribute, value) = value;
        let other = if attribute == item::KV_COUNT {
            item::KV_JSON
        } else {
            item::KV_COUNT
        };
        let mut sets = vec![format!(
            "{} = {}",
            self.name(attribute),
            self.value("value", value)
        )];
        let mut removes = vec![self.name(other)];
        let exp = self.name(item::EXPIRES_AT);
        match expires_at {
            Some(at) => sets.push(format!("{exp} = {}", self.value("exp", number(at)))),
            None => removes.push(exp),
        }
        format!(
            "SET {} REMOVE {} ADD {}",
            sets.join(", "),
            removes.join(", "),
            self.bump_version()
        )
    }

    /// `vid :one`, for an ADD clause: the stored version + 1, or 1.
    fn bump_version(&mut self) -> String {
        let vid = self.name(item::VERSION);
        let one = self.value("one", number(1));
        format!("{vid} {one}")
    }
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The table key of a record, after checking namespace and key.
fn record_key(namespace: &str, key: &str) -> StoreResult<Item> {
    kv::validate_key(namespace, key)?;
    Ok(item::key(
        &keys::kv_partition_key(namespace),
        key.to_owned(),
    ))
}

/// The key and value attribute of a write, after checking all three.
fn write_input(
    namespace: &str,
    key: &str,
    value: &Value,
) -> StoreResult<(Item, (&'static str, AttributeValue))> {
    let table_key = record_key(namespace, key)?;
    let json = kv::encode_value(namespace, key, value)?;
    Ok((table_key, item::kv_value(value, json)))
}

impl DynamoStore {
    /// One UpdateItem. `Ok(None)` when its condition failed, else the attributes asked
    /// for by `returns`.
    async fn kv_update(
        &self,
        key: Item,
        update: String,
        condition: Option<String>,
        expression: Expression,
        returns: ReturnValue,
    ) -> StoreResult<Option<Item>> {
        let result = self
            .client
            .update_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(returns)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.attributes().cloned().unwrap_or_default())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    /// A conditional write of `value`: true when the condition held.
    async fn kv_write(
        &self,
        input: (Item, (&'static str, AttributeValue)),
        expires_at: Option<i64>,
        condition: impl FnOnce(&mut Expression) -> Option<String>,
    ) -> StoreResult<bool> {
        let (key, value) = input;
        let mut expression = Expression::default();
        let update = expression.write(value, expires_at);
        let condition = condition(&mut expression);
        let written = self
            .kv_update(key, update, condition, expression, ReturnValue::None)
            .await?;
        Ok(written.is_some())
    }

    /// Adds `delta` to a live counter that stays within `i64`; `None` when there is no
    /// live counter with room (absent, expired, not an integer, or overflowing).
    async fn add_to_live_counter(&self, key: Item, delta: i64) -> StoreResult<Option<i64>> {
        let mut expression = Expression::default();
        let count = expression.name(item::KV_COUNT);
        let delta_value = expression.value("delta", number(delta));
        let update = format!("ADD {count} {delta_value}, {}", expression.bump_version());
        let (comparison, bound) = room_for(delta);
        let bound = expression.value("bound", number(bound));
        let live = expression.live(kv::unix_now());
        let condition =
            format!("attribute_exists({count}) AND {count} {comparison} {bound} AND {live}");
        let updated = self
            .kv_update(
                key,
                update,
                Some(condition),
                expression,
                ReturnValue::UpdatedNew,
            )
            .await?;
        updated
            .map(|attributes| item::get_i64(&attributes, item::KV_COUNT))
            .transpose()
    }

    /// Starts the counter at `delta` over an absent or expired record.
    async fn restart_counter(
        &self,
        key: Item,
        delta: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<bool> {
        let value = (item::KV_COUNT, number(delta));
        let now = kv::unix_now();
        self.kv_write((key, value), expires_at, |e| {
            e.allows(WriteWhen::AbsentOrExpired, now)
        })
        .await
    }

    /// The live record under `key`, read consistently.
    async fn kv_get(&self, key: Item) -> StoreResult<Option<KvEntry>> {
        let output = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let now = kv::unix_now();
        Ok(output
            .item()
            .map(item::decode_kv)
            .transpose()?
            .filter(|entry| entry.is_live(now)))
    }

    /// One page of a namespace's live records with the prefix: DynamoDB reads `limit`
    /// items, then the filter drops the expired ones, so a page may come up short.
    async fn kv_query_page(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        start: Option<Item>,
    ) -> StoreResult<(Vec<(String, KvEntry)>, Option<Item>)> {
        let everything = SortRange {
            low: None,
            high: None,
        };
        let prefix = Some(prefix.to_owned()).filter(|p| !p.is_empty());
        let now = kv::unix_now();
        let mut filter = Expression::default();
        let live = filter.live(now);
        let mut query = self
            .query_keys(item::PK, item::SK, pk, &everything, prefix)
            .filter_expression(live)
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        for (placeholder, name) in filter.names {
            query = query.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in filter.values {
            query = query.expression_attribute_values(placeholder, value);
        }
        let output = query.send().await.map_err(|e| sdk_error("Query", e))?;
        let mut entries = Vec::with_capacity(output.items().len());
        for found in output.items() {
            let entry = item::decode_kv(found)?;
            if entry.is_live(now) {
                entries.push((item::get_s(found, item::SK)?.to_owned(), entry));
            }
        }
        Ok((entries, output.last_evaluated_key().cloned()))
    }
}

/// The comparison a counter must pass for `+ delta` to stay within `i64`: one-sided,
/// since a sum can only leave the range on the side `delta` points to. (Not `BETWEEN`:
/// moto 5.2 misparses `BETWEEN :a AND :b AND (…)`.)
fn room_for(delta: i64) -> (&'static str, i64) {
    if delta >= 0 {
        ("<=", i64::MAX - delta)
    } else {
        (">=", i64::MIN - delta)
    }
}

impl KeyValueStore for DynamoStore {
    async fn write(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        expires_at: Option<i64>,
        when: WriteWhen,
    ) -> StoreResult<bool> {
        let input = write_input(namespace, key, value)?;
        let now = kv::unix_now();
        self.kv_write(input, expires_at, |e| e.allows(when, now))
            .await
    }

    async fn get(&self, namespace: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        self.kv_get(record_key(namespace, key)?).await
    }

    async fn take(&self, namespace: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        let key = record_key(namespace, key)?;
        let mut condition = Expression::default();
        let pk = condition.name(item::PK);
        let live = condition.live(kv::unix_now());
        let result = self
            .client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .condition_expression(format!("attribute_exists({pk}) AND {live}"))
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes() {
                Some(old) => item::decode_kv(old).map(Some),
                None => Err(StoreError::Backend(
                    "DynamoDB DeleteItem: a conditional delete returned no old item".into(),
                )),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error("DeleteItem", e)),
        }
    }

    async fn delete(&self, namespace: &str, key: &str) -> StoreResult<()> {
        let key = record_key(namespace, key)?;
        self.client
            .delete_item()
            .table_name(&*self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(())
    }

    /// Add to a live counter; failing that, restart an absent or expired one; failing
    /// that too, read what is there: a live non-counter (or overflow) is refused, and
    /// anything else means another caller changed the record in between, so try again.
    async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> StoreResult<i64> {
        let table_key = record_key(namespace, key)?;
        for attempt in 0..INCREMENT_ATTEMPTS {
            if attempt > 0 {
                fhir_store::conflict_backoff(attempt).await;
            }
            if let Some(count) = self.add_to_live_counter(table_key.clone(), delta).await? {
                return Ok(count);
            }
            if self
                .restart_counter(table_key.clone(), delta, expires_at)
                .await?
            {
                return Ok(delta);
            }
            if let Some(current) = self.kv_get(table_key.clone()).await? {
                kv::add_to_counter(namespace, key, Some(&current.value), delta)?;
            }
        }
        Err(StoreError::Backend(format!(
            "increment {namespace}/{key}: the record kept changing, gave up after {INCREMENT_ATTEMPTS} attempts"
        )))
    }

    async fn list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> StoreResult<Vec<(String, KvEntry)>> {
        kv::validate_prefix(namespace, prefix)?;
        let pk = keys::kv_partition_key(namespace);
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let (entries, next) = self
                .kv_query_page(&pk, prefix, limit - found.len(), start)
                .await?;
            found.extend(entries);
            start = next;
            if start.is_none() {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_for_keeps_every_sum_within_i64() {
        for delta in [i64::MIN, -5, -1, 0, 1, 5, i64::MAX] {
            let (_, bound) = room_for(delta);
            assert!(bound.checked_add(delta).is_some(), "{delta}");
        }
        assert_eq!(room_for(1), ("<=", i64::MAX - 1));
        assert_eq!(room_for(0), ("<=", i64::MAX));
        assert_eq!(room_for(-1), (">=", i64::MIN + 1));
    }

    #[test]
    fn writes_use_every_placeholder_they_register() {
        let mut expression = Expression::default();
        let update = expression.write((item::KV_JSON, AttributeValue::S("{}".into())), None);
        assert_eq!(
            update,
            "SET #j = :value REMOVE #n, #expires_at ADD #vid :one"
        );
        let condition = expression.absent_or_expired(10);
        let text = format!("{update} {condition}");
        assert!(expression.names.keys().all(|p| text.contains(p.as_str())));
        assert!(expression.values.keys().all(|p| text.contains(p.as_str())));
    }
}
