//! Each client's budget of failed `$member-match` calls per hour (HRex: the server
//! SHALL monitor for and prevent brute-force matching).
//!
//! One counter per client and clock hour in the key-value store (`fhir_store::budget`,
//! namespace `member-match-failures.{client_id}`), raised by an atomic increment
//! after each failed match (no match, several matches, a consent that cannot be
//! honoured, a member who has not opted in) and expiring with its hour. A client whose
//! counter has reached the budget gets 429 with `Retry-After` until the hour ends,
//! whatever it sends. The increment is the store's own atomic counter, so the budget
//! holds across concurrent requests and across Lambda instances on DynamoDB alike.

use fhir_store::budget::{self, Budget};
use fhir_store::{KeyValueStore, StoreResult};

const NAMESPACE: &str = "member-match-failures";
const HOUR: i64 = 3600;

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
        let wait = budget::exhausted(kv, NAMESPACE, client_id, self.budget(), now).await?;
        Ok(wait.map(|secs| u64::try_from(secs).unwrap_or(1)))
    }

    /// Counts one failed match; returns the failures this hour so far.
    pub async fn record_failure<K: KeyValueStore + ?Sized>(
        &self,
        kv: &K,
        client_id: &str,
        now: i64,
    ) -> StoreResult<i64> {
        budget::record(kv, NAMESPACE, client_id, self.budget(), now).await
    }

    /// The shared fixed-window budget: `per_hour` failures per clock hour.
    fn budget(&self) -> Budget {
        Budget {
            limit: u32::try_from(self.per_hour.max(0)).unwrap_or(u32::MAX),
            window_secs: HOUR,
        }
    }
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
        // Renewal is at the clock hour: a full hour from its start, a second from its end.
        let spent = FailureBudget { per_hour: 1 };
        let hour = now - now.rem_euclid(3600);
        spent.record_failure(&store, "svc-c", hour).await.unwrap();
        assert_eq!(
            spent.exhausted(&store, "svc-c", hour).await.unwrap(),
            Some(3600)
        );
        spent
            .record_failure(&store, "svc-d", hour + 3599)
            .await
            .unwrap();
        assert_eq!(
            spent.exhausted(&store, "svc-d", hour + 3599).await.unwrap(),
            Some(1)
        );
    }
}
