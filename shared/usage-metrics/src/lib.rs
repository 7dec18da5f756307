//! Usage metrics for CMS and the member's own access history (CMS-0057-F).
//!
//! Every successful read of a member's data by an app is written once, by
//! `fhir-api`, as an `audit` log line. This crate turns those lines into records and
//! the records into the two numbers CMS asks for each year and into the member's
//! history on `/connected-apps`:
//!
//! * [`event`]: which audit lines are accesses ([`AccessEvent`]);
//! * [`day`]: which day an access counts on (US Eastern calendar days);
//! * [`batch`]: a batch of events reduced to idempotent record writes;
//! * [`records`]: those records on the key-value port, sharded; writing a batch twice
//!   changes nothing, so redelivered batches cannot double count;
//! * [`report`]: the yearly counts (`year`, `members_with_app_access`,
//!   `members_with_repeat_app_access`, the plan's identifiers) as JSON and CSV;
//! * [`history`]: per app, the last access and counts by data category over 90 days.
//!
//! "More than once" is read as: on at least two distinct days (Eastern time) in the
//! year, per member, counting every app together.
//!
//! No AWS or Lambda types: the aggregator function and the local runner feed it.

pub mod batch;
pub mod day;
pub mod event;
pub mod history;
pub mod records;
pub mod report;

pub use batch::Batch;
pub use day::Day;
pub use event::{AccessEvent, AuditFields};
pub use history::{AppAccess, HISTORY_DAYS};
pub use report::{PlanIdentifiers, UsageReport};

/// Why recording or reading usage failed.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("usage store: {0}")]
    Store(#[from] fhir_store::StoreError),
    #[error("usage record {namespace}/{key} is not in the expected shape")]
    Corrupt { namespace: String, key: String },
    #[error("usage record {namespace}/{key} kept changing under concurrent writers")]
    Contended { namespace: String, key: String },
    #[error("{0}")]
    Invalid(String),
}

/// The counting rules end to end, on the real local adapter (redb).
#[cfg(test)]
mod counting {
    use super::*;
    use store_redb::RedbStore;

    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    /// 2026-06-15T16:00:00Z, noon in New York.
    const JUNE_15: i64 = 1_781_539_200_000;
    /// 2027-01-01T03:00:00Z: 22:00 on 31 December 2026 in New York.
    const NEW_YEARS_EVE_EASTERN: i64 = 1_798_772_400_000;

    fn store() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
        (dir, store)
    }

    fn access(patient: &str, client: &str, rt: &str, at_ms: i64, id: &str) -> AccessEvent {
        AccessEvent {
            patient: patient.into(),
            client_id: client.into(),
            resource_type: rt.into(),
            count: 3,
            at_ms,
            event_id: id.into(),
        }
    }

    async fn report(store: &RedbStore, year: i32) -> (u64, u64) {
        let report = UsageReport::build(store, year, PlanIdentifiers::default())
            .await
            .unwrap();
        (
            report.members_with_app_access,
            report.members_with_repeat_app_access,
        )
    }

    #[tokio::test]
    async fn several_apps_on_one_day_are_one_access_and_several_days_are_repeat_access() {
        let (_dir, store) = store();
        let events = [
            // Member 1: two apps, the same day: accessed, not repeatedly.
            access("member-1", "app-a", "ExplanationOfBenefit", JUNE_15, "e1"),
            access("member-1", "app-b", "Coverage", JUNE_15 + HOUR_MS, "e2"),
            // Member 2: one app on three days: repeatedly.
            access("member-2", "app-a", "Patient", JUNE_15, "e3"),
            access("member-2", "app-a", "Patient", JUNE_15 + DAY_MS, "e4"),
            access("member-2", "app-a", "Patient", JUNE_15 + 9 * DAY_MS, "e5"),
            // Member 3: two apps on two days: repeatedly, across apps.
            access("member-3", "app-a", "Patient", JUNE_15, "e6"),
        ];
        records::record(&store, &Batch::of(&events)).await.unwrap();
        let later = [access(
            "member-3",
            "app-b",
            "Coverage",
            JUNE_15 + DAY_MS,
            "e7",
        )];
        records::record(&store, &Batch::of(&later)).await.unwrap();
        assert_eq!(report(&store, 2026).await, (3, 2));
        assert_eq!(report(&store, 2025).await, (0, 0));
    }

    /// History records expire after 92 days by the store's clock, so history tests
    /// read accesses of the last few days.
    fn now_ms() -> i64 {
        fhir_store::kv::unix_now() * 1000
    }

    #[tokio::test]
    async fn a_redelivered_batch_counts_nothing_twice() {
        let (_dir, store) = store();
        let at = now_ms() - DAY_MS;
        let year = Day::of_unix_millis(at).unwrap().year();
        let batch = Batch::of(&[
            access("member-1", "app-a", "ExplanationOfBenefit", at, "e1"),
            access("member-1", "app-a", "ExplanationOfBenefit", at + 1, "e2"),
        ]);
        records::record(&store, &batch).await.unwrap();
        records::record(&store, &batch).await.unwrap();
        assert_eq!(report(&store, year).await, (1, 0));
        let apps = history::history(&store, "member-1", now_ms())
            .await
            .unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].counts["ExplanationOfBenefit"], 6);
        assert_eq!(apps[0].last_access_ms, at + 1);
    }

    #[tokio::test]
    async fn the_year_ends_at_midnight_eastern_not_utc() {
        let (_dir, store) = store();
        // In UTC these are two accesses on 1 January 2027; in New York the first is on
        // New Year's Eve, so 2026 has the member once and 2027 has them once.
        let events = [
            access("member-1", "app-a", "Patient", NEW_YEARS_EVE_EASTERN, "e1"),
            access(
                "member-1",
                "app-a",
                "Patient",
                NEW_YEARS_EVE_EASTERN + 3 * HOUR_MS,
                "e2",
            ),
        ];
        records::record(&store, &Batch::of(&events)).await.unwrap();
        assert_eq!(report(&store, 2026).await, (1, 0));
        assert_eq!(report(&store, 2027).await, (1, 0));
    }

    #[tokio::test]
    async fn history_shows_each_app_over_the_last_ninety_days_only() {
        let (_dir, store) = store();
        let now = now_ms();
        let events = [
            // Still stored (records live 92 days) but outside the 90-day window.
            access(
                "member-1",
                "app-a",
                "ExplanationOfBenefit",
                now - 91 * DAY_MS,
                "e1",
            ),
            access(
                "member-1",
                "app-a",
                "ExplanationOfBenefit",
                now - 10 * DAY_MS,
                "e2",
            ),
            access("member-1", "app-b", "Coverage", now - DAY_MS, "e3"),
            access("member-2", "app-a", "Patient", now, "e4"),
        ];
        records::record(&store, &Batch::of(&events)).await.unwrap();
        let apps = history::history(&store, "member-1", now).await.unwrap();
        let summary: Vec<(&str, u64)> = apps
            .iter()
            .map(|a| (a.client_id.as_str(), a.counts.values().sum()))
            .collect();
        assert_eq!(summary, [("app-a", 3), ("app-b", 3)]);
    }
}
