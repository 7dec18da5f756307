//! A batch of access events reduced to the record writes it needs.
//!
//! Reducing first keeps the writes few (an app paging through a member's claims makes
//! one write per batch, not one per page) and deterministic: the same batch, delivered
//! again, reduces to the same writes with the same keys.

use std::collections::{BTreeMap, BTreeSet};

use crate::{AccessEvent, Day};

/// What one batch adds: per member and year the days they were accessed, and per
/// (member, day, app, type) the resources read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `(year, patient)` → the days of that year with an access.
    pub member_days: BTreeMap<(i32, String), BTreeSet<Day>>,
    /// One entry per (member, day, app, resource type) seen in the batch.
    pub accesses: BTreeMap<AccessGroup, AccessCount>,
}

/// The identity of one access-count record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccessGroup {
    pub patient: String,
    pub day: Day,
    pub client_id: String,
    pub resource_type: String,
}

/// Resources read in one group, when last, and the group's record id: the event id
/// of its first event, unique to this batch and the same on every redelivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessCount {
    pub count: u64,
    pub last_ms: i64,
    pub record_id: String,
}

impl Batch {
    pub fn of(events: &[AccessEvent]) -> Batch {
        let mut batch = Batch::default();
        for event in events {
            let Some(day) = Day::of_unix_millis(event.at_ms) else {
                continue;
            };
            batch
                .member_days
                .entry((day.year(), event.patient.clone()))
                .or_default()
                .insert(day);
            let group = AccessGroup {
                patient: event.patient.clone(),
                day,
                client_id: event.client_id.clone(),
                resource_type: event.resource_type.clone(),
            };
            let entry = batch.accesses.entry(group).or_insert_with(|| AccessCount {
                count: 0,
                last_ms: event.at_ms,
                record_id: event.event_id.clone(),
            });
            entry.count = entry.count.saturating_add(event.count);
            entry.last_ms = entry.last_ms.max(event.at_ms);
        }
        batch
    }

    pub fn is_empty(&self) -> bool {
        self.member_days.is_empty() && self.accesses.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(
        patient: &str,
        client: &str,
        rt: &str,
        at_ms: i64,
        id: &str,
    ) -> AccessEvent {
        AccessEvent {
            patient: patient.into(),
            client_id: client.into(),
            resource_type: rt.into(),
            count: 2,
            at_ms,
            event_id: id.into(),
        }
    }

    // 2026-03-10T15:00:00Z, a Tuesday afternoon in New York.
    const TUESDAY: i64 = 1_773_154_800_000;
    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn pages_of_one_sync_reduce_to_one_count_with_the_first_event_as_its_id() {
        let events = [
            event("p1", "app-a", "ExplanationOfBenefit", TUESDAY, "e1"),
            event("p1", "app-a", "ExplanationOfBenefit", TUESDAY + 1000, "e2"),
            event("p1", "app-a", "Coverage", TUESDAY + 2000, "e3"),
        ];
        let batch = Batch::of(&events);
        assert_eq!(batch.accesses.len(), 2);
        let eob = batch
            .accesses
            .iter()
            .find(|(g, _)| g.resource_type == "ExplanationOfBenefit")
            .unwrap()
            .1;
        assert_eq!(
            (eob.count, eob.last_ms, eob.record_id.as_str()),
            (4, TUESDAY + 1000, "e1")
        );
        assert_eq!(batch.member_days.len(), 1);
    }

    #[test]
    fn days_are_per_member_across_apps() {
        let events = [
            event("p1", "app-a", "Patient", TUESDAY, "e1"),
            event("p1", "app-b", "Patient", TUESDAY + DAY_MS, "e2"),
            event("p2", "app-b", "Patient", TUESDAY, "e3"),
        ];
        let batch = Batch::of(&events);
        let p1 = &batch.member_days[&(2026, "p1".to_owned())];
        assert_eq!(p1.len(), 2);
        assert_eq!(batch.member_days[&(2026, "p2".to_owned())].len(), 1);
    }

    #[test]
    fn the_same_batch_reduces_to_the_same_writes() {
        let events = [
            event("p1", "app-a", "Patient", TUESDAY, "e1"),
            event("p2", "app-b", "Coverage", TUESDAY, "e2"),
        ];
        assert_eq!(Batch::of(&events), Batch::of(&events));
    }
}
