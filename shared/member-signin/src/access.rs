//! Whether the plan still lets a member sign in: the Pre Authentication trigger's
//! question, asked before any challenge.
//!
//! A member is refused when the plan has disabled them:
//! * **coverage ended** longer ago than the plan's access window (every Coverage has a
//!   `period.end`, and the latest is more than `access_window_days` before today);
//! * an **operator hold** (`patient-access-admin members hold`), until released.
//!
//! Holds live in the key-value store under the Patient id (an opaque id, not PHI).

use fhir_store::KeyValueStore;
use serde_json::{Value, json};

use crate::ports::PortError;

/// Operator holds, keyed by Patient id.
pub const HOLD_NAMESPACE: &str = "member-hold";

/// Why a member may not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CoverageEnded,
    OperatorHold,
}

/// The latest end of the member's coverage: `None` while any Coverage is open-ended
/// (or there is none to judge by), else the latest `period.end` date (`YYYY-MM-DD`).
pub fn latest_coverage_end<'a>(coverages: impl IntoIterator<Item = &'a Value>) -> Option<String> {
    let mut latest: Option<String> = None;
    for coverage in coverages {
        let end = coverage
            .get("period")
            .and_then(|p| p.get("end"))
            .and_then(Value::as_str)
            .and_then(|end| end.get(..10));
        let end = end?;
        if latest.as_deref().is_none_or(|l| end > l) {
            latest = Some(end.to_owned());
        }
    }
    latest
}

/// Whether coverage that ended on `latest_end` is past the access window at `now`
/// (Unix seconds). `window_days = None`: the plan keeps former members' access.
pub fn coverage_lapsed(latest_end: Option<&str>, now: i64, window_days: Option<u32>) -> bool {
    let (Some(end), Some(days)) = (latest_end, window_days) else {
        return false;
    };
    let cutoff = now - i64::from(days) * 86_400;
    let Ok(cutoff) = time::OffsetDateTime::from_unix_timestamp(cutoff) else {
        return false;
    };
    // ISO dates compare as text.
    end < cutoff.date().to_string().as_str()
}

/// Puts a member on hold: sign-in refused until [`release`].
pub async fn hold<K: KeyValueStore + ?Sized>(kv: &K, patient: &str) -> Result<(), PortError> {
    kv.put(
        HOLD_NAMESPACE,
        patient,
        &json!({ "since": fhir::clock::unix_now() }),
        None,
    )
    .await
    .map_err(|e| PortError(e.to_string()))
}

/// Ends a member's hold. `Ok(false)`: there was none.
pub async fn release<K: KeyValueStore + ?Sized>(kv: &K, patient: &str) -> Result<bool, PortError> {
    kv.take(HOLD_NAMESPACE, patient)
        .await
        .map(|taken| taken.is_some())
        .map_err(|e| PortError(e.to_string()))
}

/// Whether the member is on hold.
pub async fn is_held<K: KeyValueStore + ?Sized>(kv: &K, patient: &str) -> Result<bool, PortError> {
    kv.get(HOLD_NAMESPACE, patient)
        .await
        .map(|entry| entry.is_some())
        .map_err(|e| PortError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T00:00:00Z.
    const NOW: i64 = 1_796_601_600;

    #[test]
    fn open_ended_coverage_has_no_end() {
        let coverages = [
            json!({ "period": { "start": "2020-01-01", "end": "2021-12-31" } }),
            json!({ "period": { "start": "2022-01-01" } }),
        ];
        assert_eq!(latest_coverage_end(&coverages), None);
        assert_eq!(latest_coverage_end(&[]), None);
    }

    #[test]
    fn the_latest_end_counts() {
        let coverages = [
            json!({ "period": { "end": "2024-06-30" } }),
            json!({ "period": { "end": "2025-12-31T23:59:59Z" } }),
        ];
        assert_eq!(
            latest_coverage_end(&coverages).as_deref(),
            Some("2025-12-31")
        );
    }

    #[test]
    fn coverage_past_the_window_lapses() {
        // A year's window from 2026-12-07: cut off at 2025-12-07.
        assert!(coverage_lapsed(Some("2025-12-06"), NOW, Some(365)));
        assert!(!coverage_lapsed(Some("2025-12-07"), NOW, Some(365)));
        assert!(!coverage_lapsed(Some("2026-06-30"), NOW, Some(365)));
        assert!(!coverage_lapsed(None, NOW, Some(0)));
        assert!(!coverage_lapsed(Some("1999-01-01"), NOW, None));
    }
}
