//! The usage records on the key-value port (`fhir_store::KeyValueStore`), so the same
//! code runs on redb locally and on DynamoDB on AWS.
//!
//! Two kinds, both sharded by a stable hash of the Patient id into [`SHARDS`]
//! namespaces (each namespace is one DynamoDB partition key), so writes spread over
//! many partitions and every read is a Query of one:
//!
//! | namespace | key | value | lives |
//! |---|---|---|---|
//! | `usage-days-{year}-{shard:03}` | Patient id | `{"days": ["2026-03-10", …]}` | until 1 January of year + 2 |
//! | `usage-access-{shard:03}` | `{patient}/{day}/{record id}` | `{"client", "type", "n", "last"}` | 92 days |
//!
//! Both writes are idempotent, which is what makes redelivery harmless: the days are
//! a set union (read, then a conditional replace on the version read, retried on a
//! lost race), and an access-count record is keyed by the event id of its batch's
//! first event, so writing the same batch again rewrites the same values.

use fhir_store::{KeyValueStore, StoreError};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::batch::{AccessCount, AccessGroup};
use crate::{Batch, Day, UsageError};

/// Shards per record kind. 10 million members make about 80,000 member-year records
/// per shard; each shard takes 1/128 of the write rate (a DynamoDB partition takes
/// 1,000 writes/s, so about 100,000 accesses/s in all). Changing it re-homes every
/// member: never change it for a year that has records.
pub const SHARDS: u16 = 128;

/// How long an access-count record lives: the 90-day history plus a margin for the
/// time zone and clock skew.
const ACCESS_RECORD_SECONDS: i64 = 92 * 86_400;

/// Writes in flight at once while recording a batch.
const CONCURRENT_WRITES: usize = 16;

/// Attempts at the read-then-replace of one member-year record before giving up.
const MAX_ATTEMPTS: usize = 16;

/// The shard of a member: FNV-1a of the Patient id (stable across processes and
/// releases, unlike the standard library's hasher).
pub fn shard(patient: &str) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in patient.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u16::try_from(hash % u64::from(SHARDS)).unwrap_or(0)
}

pub fn days_namespace(year: i32, shard: u16) -> String {
    format!("usage-days-{year}-{shard:03}")
}

pub fn access_namespace(shard: u16) -> String {
    format!("usage-access-{shard:03}")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct MemberDays {
    days: Vec<String>,
}

/// One access-count record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    #[serde(rename = "client")]
    pub client_id: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(rename = "n")]
    pub count: u64,
    #[serde(rename = "last")]
    pub last_ms: i64,
    /// Not stored in the value: read from the key.
    #[serde(skip)]
    pub day: Option<Day>,
}

/// Writes everything one batch adds. Safe to call again with the same batch (after a
/// crash, a retry or a redelivery): nothing is counted twice.
pub async fn record<K: KeyValueStore>(kv: &K, batch: &Batch) -> Result<(), UsageError> {
    // Owned items: futures borrowing the batch through the closure's argument would
    // not be `Send` for every lifetime, which `tokio::spawn` callers need.
    let member_days: Vec<(i32, String, Vec<Day>)> = batch
        .member_days
        .iter()
        .map(|((year, patient), days)| (*year, patient.clone(), days.iter().copied().collect()))
        .collect();
    stream::iter(member_days)
        .map(|(year, patient, days)| async move {
            add_days(kv, year, &patient, days.into_iter()).await
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect::<Vec<()>>()
        .await?;
    let accesses: Vec<(AccessGroup, AccessCount)> = batch
        .accesses
        .iter()
        .map(|(group, count)| (group.clone(), count.clone()))
        .collect();
    stream::iter(accesses)
        .map(|(group, count)| async move { put_access(kv, &group, &count).await })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn put_access<K: KeyValueStore>(
    kv: &K,
    group: &AccessGroup,
    count: &AccessCount,
) -> Result<(), UsageError> {
    let namespace = access_namespace(shard(&group.patient));
    let key = format!("{}/{}/{}", group.patient, group.day, count.record_id);
    let value = AccessRecord {
        client_id: group.client_id.clone(),
        resource_type: group.resource_type.clone(),
        count: count.count,
        last_ms: count.last_ms,
        day: None,
    };
    let value = serde_json::to_value(&value).map_err(|e| UsageError::Invalid(e.to_string()))?;
    let expires_at = count.last_ms.div_euclid(1000) + ACCESS_RECORD_SECONDS;
    kv.put(&namespace, &key, &value, Some(expires_at)).await?;
    Ok(())
}

/// Adds days to a member's record for the year: a set union under optimistic
/// concurrency, so concurrent aggregators and repeated batches converge.
async fn add_days<K: KeyValueStore>(
    kv: &K,
    year: i32,
    patient: &str,
    new_days: impl Iterator<Item = Day> + Clone,
) -> Result<(), UsageError> {
    let namespace = days_namespace(year, shard(patient));
    let expires_at = Day::start_of_year_unix(year.saturating_add(2));
    for _ in 0..MAX_ATTEMPTS {
        let current = kv.get(&namespace, patient).await?;
        let mut days = match &current {
            Some(entry) => member_days(&namespace, patient, &entry.value)?,
            None => Vec::new(),
        };
        let before = days.len();
        days.extend(new_days.clone());
        days.sort_unstable();
        days.dedup();
        if days.len() == before {
            return Ok(());
        }
        let value = serde_json::to_value(MemberDays {
            days: days.iter().map(Day::to_string).collect(),
        })
        .map_err(|e| UsageError::Invalid(e.to_string()))?;
        let written = match &current {
            Some(entry) => {
                kv.replace(&namespace, patient, entry.version, &value, expires_at)
                    .await?
            }
            None => kv.insert(&namespace, patient, &value, expires_at).await?,
        };
        if written {
            return Ok(());
        }
    }
    Err(UsageError::Contended {
        namespace,
        key: patient.to_owned(),
    })
}

fn member_days(
    namespace: &str,
    patient: &str,
    value: &serde_json::Value,
) -> Result<Vec<Day>, UsageError> {
    let corrupt = || UsageError::Corrupt {
        namespace: namespace.to_owned(),
        key: patient.to_owned(),
    };
    let stored = MemberDays::deserialize(value).map_err(|_| corrupt())?;
    stored
        .days
        .iter()
        .map(|d| Day::parse(d).ok_or_else(corrupt))
        .collect()
}

/// The number of distinct access days of every member of one shard in `year`, one
/// number per member (one Query of the shard's partition, paged by the adapter).
pub async fn distinct_days_in_shard<K: KeyValueStore>(
    kv: &K,
    year: i32,
    shard: u16,
) -> Result<Vec<usize>, UsageError> {
    let namespace = days_namespace(year, shard);
    let entries = kv.list(&namespace, "", usize::MAX).await?;
    entries
        .iter()
        .map(|(patient, entry)| {
            let days = member_days(&namespace, patient, &entry.value)?;
            Ok(days.iter().filter(|d| d.year() == year).count())
        })
        .collect()
}

/// The live access-count records of one member (at most the last 92 days), oldest
/// day first. One Query of the member's shard, limited to the member's key prefix.
pub async fn accesses_of<K: KeyValueStore>(
    kv: &K,
    patient: &str,
) -> Result<Vec<AccessRecord>, UsageError> {
    let namespace = access_namespace(shard(patient));
    let prefix = format!("{patient}/");
    let entries = match kv.list(&namespace, &prefix, usize::MAX).await {
        Ok(entries) => entries,
        // An id that cannot be a key has no records.
        Err(StoreError::InvalidKey(_)) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    entries
        .into_iter()
        .map(|(key, entry)| {
            let mut record =
                AccessRecord::deserialize(&entry.value).map_err(|_| UsageError::Corrupt {
                    namespace: namespace.clone(),
                    key: key.clone(),
                })?;
            record.day = key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').next())
                .and_then(Day::parse);
            Ok(record)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed forever: a change would re-home every member's records.
        assert_eq!(
            shard("patient-999996666-DH000154930"),
            shard("patient-999996666-DH000154930")
        );
        let used: std::collections::BTreeSet<u16> =
            (0..2000).map(|i| shard(&format!("patient-{i}"))).collect();
        assert!(used.len() > 120, "{} of {SHARDS} shards used", used.len());
        assert!(used.iter().all(|s| *s < SHARDS));
    }

    #[test]
    fn namespaces_are_valid_and_name_year_and_shard() {
        assert_eq!(days_namespace(2026, 7), "usage-days-2026-007");
        assert_eq!(access_namespace(127), "usage-access-127");
        assert!(fhir_store::kv::validate_key(&days_namespace(2026, 7), "p").is_ok());
    }
}
