//! Each client's budget of failed `$member-match` calls per hour (HRex: the server
//! SHALL monitor for and prevent brute-force matching).
//!
//! One counter per client and clock hour in the key-value store (namespace
//! `member-match-failures`, key `{client_id}:{hour}`), raised by an atomic increment
//! after each failed match (no match, several matches, a consent that cannot be
//! honoured, a member who has not opted in) and expiring with its hour. A client whose
//! counter has reached the budget gets 429 with `Retry-After` until the hour ends,
//! whatever it sends. The increment is the store's own atomic counter, so the budget
//! holds across concurrent requests and across Lambda instances on DynamoDB alike.

use fhir_store::{KeyValueStore, StoreResult};

const NAMESPACE: &str = "member-match-failures";
const HOUR: i64 = 3600;
/// Kept a minute past its hour so a request at the boundary still reads it.
const GRACE: i64 = 60;

/// The default: a requesting plan that fails this often in an hour is guessing.
pub const DEFAULT_FAILURES_PER_HOUR: i64 = 20;

/// A client's failed-match budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBudget {
    pub per_hour: i64,
}

impl Default for FailureBudget {
    fn default() -> Self {
        FailureBudget {
            per_hour: DEFAULT_FAILURES_PER_HOUR,
        }
    }
}

impl FailureBudget {
    /// `Some(seconds until the budget renews)` when the client has spent it.
    pub async fn exhausted<K: KeyValueStore + ?Sized>(
        &self,
        kv: &K,
        client_id: &str,
        now: i64,
    ) -> StoreResult<Option<u64>> {
        let spent = kv
            .get(NAMESPACE, &key(client_id, now))
            .await?
            .and_then(|entry| entry.value.as_i64())
            .unwrap_or(0);
        Ok((spent >= self.per_hour).then(|| retry_after(now)))
    }

    /// Counts one failed match; returns the failures this hour so far.
    pub async fn record_failure<K: KeyValueStore + ?Sized>(
        &self,
        kv: &K,
        client_id: &str,
        now: i64,
    ) -> StoreResult<i64> {
        let expires = window_end(now).saturating_add(GRACE);
        kv.increment(NAMESPACE, &key(client_id, now), 1, Some(expires))
            .await
    }
}

fn key(client_id: &str, now: i64) -> String {
    format!("{client_id}:{}", now.div_euclid(HOUR))
}

fn window_end(now: i64) -> i64 {
    (now.div_euclid(HOUR) + 1).saturating_mul(HOUR)
}

fn retry_after(now: i64) -> u64 {
    u64::try_from(window_end(now) - now).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_spends_its_budget_waits_for_the_next_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("db")).unwrap();
        let budget = FailureBudget { per_hour: 3 };
        let now = fhir::clock::unix_now();
        for n in 1..=3 {
            assert_eq!(budget.exhausted(&store, "svc-a", now).await.unwrap(), None);
            assert_eq!(
                budget.record_failure(&store, "svc-a", now).await.unwrap(),
                n
            );
        }
        let wait = budget.exhausted(&store, "svc-a", now).await.unwrap();
        assert!(wait.is_some_and(|s| (1..=3600).contains(&s)), "{wait:?}");
        assert_eq!(
            budget.exhausted(&store, "svc-b", now).await.unwrap(),
            None,
            "budgets are per client"
        );
        assert_eq!(retry_after(7200), 3600);
        assert_eq!(retry_after(7199), 1);
    }
}
