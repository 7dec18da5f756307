//! A member's own access history: per app, the last access and the resources read by
//! data category over the last [`HISTORY_DAYS`] days.

use std::collections::BTreeMap;

use fhir_store::KeyValueStore;

use crate::records::{AccessRecord, accesses_of};
use crate::{Day, UsageError};

/// The window `/connected-apps` shows.
pub const HISTORY_DAYS: i64 = 90;

/// One app's reads of the member's data within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAccess {
    pub client_id: String,
    /// The latest access, unix milliseconds.
    pub last_access_ms: i64,
    /// Resources read per resource type (the data category), in type-name order.
    pub counts: BTreeMap<String, u64>,
}

/// Sums records per app, keeping those on `since` or later.
pub fn summarize(records: &[AccessRecord], since: Day) -> Vec<AppAccess> {
    let mut apps: BTreeMap<&str, AppAccess> = BTreeMap::new();
    for record in records.iter().filter(|r| r.day.is_some_and(|d| d >= since)) {
        let app = apps
            .entry(record.client_id.as_str())
            .or_insert_with(|| AppAccess {
                client_id: record.client_id.clone(),
                last_access_ms: record.last_ms,
                counts: BTreeMap::new(),
            });
        app.last_access_ms = app.last_access_ms.max(record.last_ms);
        let count = app.counts.entry(record.resource_type.clone()).or_default();
        *count = count.saturating_add(record.count);
    }
    apps.into_values().collect()
}

/// The member's history at `now_ms`: today and the 89 days before it (Eastern days).
pub async fn history<K: KeyValueStore>(
    kv: &K,
    patient: &str,
    now_ms: i64,
) -> Result<Vec<AppAccess>, UsageError> {
    let today = Day::of_unix_millis(now_ms)
        .ok_or_else(|| UsageError::Invalid(format!("{now_ms} is not a usable time")))?;
    let records = accesses_of(kv, patient).await?;
    Ok(summarize(&records, today.minus_days(HISTORY_DAYS - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(client: &str, rt: &str, day: &str, count: u64, last_ms: i64) -> AccessRecord {
        AccessRecord {
            client_id: client.into(),
            resource_type: rt.into(),
            count,
            last_ms,
            day: Day::parse(day),
        }
    }

    #[test]
    fn per_app_last_access_and_counts_by_category_within_the_window() {
        let records = [
            record("app-a", "ExplanationOfBenefit", "2026-01-01", 100, 1),
            record("app-a", "ExplanationOfBenefit", "2026-03-01", 20, 5),
            record("app-a", "ExplanationOfBenefit", "2026-03-02", 22, 9),
            record("app-a", "Coverage", "2026-03-02", 1, 8),
            record("app-b", "Patient", "2026-03-03", 1, 12),
        ];
        let since = Day::parse("2026-02-01").unwrap();
        let apps = summarize(&records, since);
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].client_id, "app-a");
        assert_eq!(apps[0].last_access_ms, 9);
        assert_eq!(
            apps[0].counts["ExplanationOfBenefit"], 42,
            "the January read is outside"
        );
        assert_eq!(apps[0].counts["Coverage"], 1);
        assert_eq!(apps[1].counts["Patient"], 1);
    }
}
