//! The key design every adapter shares (see `infra/dynamodb-keys.md`).
//!
//! Keys are plain strings so that DynamoDB (which compares `S` values by their UTF-8
//! bytes) and redb (which compares `&str` the same way) order them identically. Both
//! adapters build every key and every range bound with these functions, so the
//! conformance suite run against redb also checks the key arithmetic DynamoDB relies on.
//!
//! * resource items: `R#{type}#{id}`
//! * partition keys: `C#{type}#{patient}` (compartment), `T#{type}` (directory type),
//!   `L#{type}#{param}` (look-up terms of one parameter)
//! * sort keys in `C#`/`T#` partitions: `{lastUpdated}#{id}`; `lastUpdated` has a fixed
//!   width, and `#` sorts below every id character, so string order is (lastUpdated, id)
//! * sort keys in `L#` partitions: `{term}\u{1}{id}`; `\u{1}` sorts below every term
//!   character (terms are cleaned of control characters), so string order is (term, id)
//! * key-value records: partition `K#{namespace}`, sort key = the record's key (see
//!   [`crate::kv`], which refuses `#` in namespaces and control characters anywhere)

use std::collections::BTreeSet;

use fhir::{Instant, ResourceType};
use fhir_search::SearchIndex;

use crate::{ListQuery, Partition, ResourceRecord, SortKey};

/// Separates the last-updated instant from the id in `C#`/`T#` sort keys.
const TIME_SEPARATOR: char = '#';
/// Separates the term from the id in `L#` sort keys; below every character a term keeps.
const TERM_SEPARATOR: char = '\u{1}';
/// Sorts below every id character (`[A-Za-z0-9.-]`) but above both separators, so
/// `key + EXCLUSIVE_SUFFIX` is the smallest bound strictly after `key`.
const EXCLUSIVE_SUFFIX: char = '!';
/// Sorts above every id character; pads the predecessor bound (see [`before`]).
const ID_CHAR_CEILING: char = '~';
/// FHIR ids have at most 64 characters.
const MAX_ID_LEN: usize = 64;

/// The key of a resource's items (current, versions, chunks): `R#{type}#{id}`.
pub fn resource_key(resource_type: ResourceType, id: &str) -> String {
    format!("R#{resource_type}#{id}")
}

/// The key of the partition a query reads.
pub fn partition_key(partition: &Partition) -> String {
    match partition {
        Partition::Compartment {
            patient,
            resource_type,
        } => compartment_key(*resource_type, patient),
        Partition::Type(resource_type) => type_key(*resource_type),
        Partition::Lookup {
            resource_type,
            param,
            ..
        } => lookup_key(*resource_type, param),
    }
}

fn compartment_key(resource_type: ResourceType, patient: &str) -> String {
    format!("C#{resource_type}#{patient}")
}

fn type_key(resource_type: ResourceType) -> String {
    format!("T#{resource_type}")
}

/// The partition of one search parameter's look-up entries: `L#{type}#{param}`.
pub fn lookup_key(resource_type: ResourceType, param: &str) -> String {
    format!("L#{resource_type}#{param}")
}

/// The partition of one key-value namespace: `K#{namespace}`. Its sort keys are the
/// records' keys themselves, so a key prefix is a sort-key prefix.
pub fn kv_partition_key(namespace: &str) -> String {
    format!("K#{namespace}")
}

/// The sort key of a record in its `C#`/`T#` partition: `{lastUpdated}#{id}`.
pub fn time_sort_key(last_updated: &Instant, id: &str) -> SortKey {
    SortKey(format!("{last_updated}{TIME_SEPARATOR}{id}"))
}

/// The sort key of one look-up entry: `{term}\u{1}{id}`.
pub fn term_sort_key(term: &str, id: &str) -> SortKey {
    SortKey(format!("{}{TERM_SEPARATOR}{id}", clean_term(term)))
}

/// The look-up prefix that lists exactly `term`'s entries, not also those of every
/// longer term it begins (`loc-1` without `loc-10`, `loc-100`, …): the term and the
/// separator after it.
pub fn exact_term_prefix(term: &str) -> String {
    format!("{}{TERM_SEPARATOR}", clean_term(term))
}

/// A look-up prefix as stored terms are cleaned, keeping the trailing separator of
/// an [`exact_term_prefix`] (a cleaned term never holds one).
fn clean_prefix(prefix: &str) -> String {
    match prefix.strip_suffix(TERM_SEPARATOR) {
        Some(term) => exact_term_prefix(term),
        None => clean_term(prefix),
    }
}

/// Control characters would break the (term, id) order, so they become spaces.
fn clean_term(term: &str) -> String {
    term.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A (partition key, sort key) pair: one entry of a partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey {
    pub pk: String,
    pub sk: String,
}

/// The `C#`/`T#` partition entry of a current record; `None` for a tombstone, which
/// must leave every listing.
pub fn partition_entry(record: &ResourceRecord) -> Option<EntryKey> {
    if record.deleted {
        return None;
    }
    let pk = match &record.index.compartment {
        Some(patient) => compartment_key(record.resource_type, patient),
        None => type_key(record.resource_type),
    };
    let SortKey(sk) = time_sort_key(&record.last_updated, &record.id);
    Some(EntryKey { pk, sk })
}

/// The `L#` entries of a current record (none for a tombstone), deduplicated.
pub fn lookup_entries(record: &ResourceRecord) -> BTreeSet<EntryKey> {
    if record.deleted {
        return BTreeSet::new();
    }
    lookup_entries_of(record.resource_type, &record.id, &record.index)
}

fn lookup_entries_of(
    resource_type: ResourceType,
    id: &str,
    index: &SearchIndex,
) -> BTreeSet<EntryKey> {
    index
        .lookup_terms
        .iter()
        .map(|(param, term)| EntryKey {
            pk: lookup_key(resource_type, param),
            sk: term_sort_key(term, id).0,
        })
        .collect()
}

/// An inclusive range of sort keys inside one partition; `None` bounds are open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRange {
    pub low: Option<String>,
    pub high: Option<String>,
}

impl SortRange {
    /// True when no key can fall in the range, so the store need not ask (DynamoDB
    /// rejects `BETWEEN` with low > high, and an empty string as a key value).
    pub fn is_empty(&self) -> bool {
        self.high.as_deref() == Some("")
            || matches!((&self.low, &self.high), (Some(low), Some(high)) if low > high)
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &str) -> bool {
        self.low.as_deref().is_none_or(|low| key >= low)
            && self.high.as_deref().is_none_or(|high| key <= high)
    }
}

/// The inclusive sort-key range a listing reads, with `after`, the `[from, to)`
/// last-updated bounds and the look-up prefix folded in.
///
/// Inclusive bounds because one DynamoDB key condition allows only one comparison on
/// the sort key (`BETWEEN` is inclusive), so `after` (exclusive) and the prefix have to
/// become plain bounds. This is sound because of how sort keys end (an id character):
/// * `> k` is `>= k + "!"`: every key extending `k` continues with an id character.
/// * `< k` is `<= before(k)`: see [`before`].
/// * `< to` is `<= to`: no key equals a bare instant; `to#id` sorts after `to`.
/// * `begins_with(p)` is `>= p AND <= p + char::MAX`.
pub fn sort_range(query: &ListQuery) -> SortRange {
    let (mut low, mut high) = match &query.partition {
        Partition::Lookup { prefix, .. } if prefix.is_empty() => (None, None),
        Partition::Lookup { prefix, .. } => {
            let prefix = clean_prefix(prefix);
            let high = format!("{prefix}{}", char::MAX);
            (Some(prefix), Some(high))
        }
        Partition::Compartment { .. } | Partition::Type(_) => (
            query
                .last_updated_from
                .as_ref()
                .map(|i| i.as_str().to_owned()),
            query
                .last_updated_to
                .as_ref()
                .map(|i| i.as_str().to_owned()),
        ),
    };
    if let Some(SortKey(after)) = &query.after {
        if query.descending {
            high = tighter(high, Some(before(after)), std::cmp::min);
        } else {
            low = tighter(
                low,
                Some(format!("{after}{EXCLUSIVE_SUFFIX}")),
                std::cmp::max,
            );
        }
    }
    SortRange { low, high }
}

fn tighter(
    bound: Option<String>,
    other: Option<String>,
    pick: fn(String, String) -> String,
) -> Option<String> {
    match (bound, other) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// The greatest possible key strictly before `key`, for an exclusive upper bound.
///
/// Keys end with an id of at most 64 characters, all below `~`. Lowering the last
/// character and padding with `~` gives a bound that every key `< key` stays below
/// or at, and no key in `(bound, key)` exists. Nothing sorts before the empty key, so
/// it yields `""`, which [`SortRange::is_empty`] reports as an empty range.
fn before(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let Some(last) = chars.pop() else {
        return String::new();
    };
    let mut bound: String = chars.into_iter().collect();
    if let Some(lower) = char::from_u32(u32::from(last).saturating_sub(1)) {
        bound.push(lower);
    }
    bound.extend(std::iter::repeat_n(ID_CHAR_CEILING, MAX_ID_LEN + 1));
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(text: &str) -> Instant {
        Instant::parse(text).expect("valid instant")
    }

    #[test]
    fn time_sort_keys_order_by_last_updated_then_id() {
        let t1 = instant("2026-01-01T00:00:00Z");
        let t2 = instant("2026-01-01T00:00:00.001Z");
        let mut keys = [
            time_sort_key(&t2, "a"),
            time_sort_key(&t1, "b"),
            time_sort_key(&t1, "a-"),
            time_sort_key(&t1, "a"),
        ];
        keys.sort();
        let ids: Vec<&str> = keys
            .iter()
            .map(|k| k.0.rsplit('#').next().unwrap_or(""))
            .collect();
        assert_eq!(ids, ["a", "a-", "b", "a"]);
    }

    #[test]
    fn term_sort_keys_order_by_term_then_id() {
        let mut keys = [
            term_sort_key("smith jo", "a"),
            term_sort_key("smith", "z"),
            term_sort_key("smith", "b"),
        ];
        keys.sort();
        assert_eq!(keys[0], term_sort_key("smith", "b"));
        assert_eq!(keys[1], term_sort_key("smith", "z"));
        assert_eq!(keys[2], term_sort_key("smith jo", "a"));
    }

    #[test]
    fn exclusive_upper_bound_admits_exactly_the_smaller_keys() {
        let t = instant("2026-01-01T00:00:00Z");
        let after = time_sort_key(&t, "m5").0;
        let high = before(&after);
        for id in ["m4", "m4zzzz", "m", "m4.", "a"] {
            assert!(time_sort_key(&t, id).0 <= high, "{id} must stay below");
        }
        for id in ["m5", "m5a", "m6", "n"] {
            assert!(time_sort_key(&t, id).0 > high, "{id} must be excluded");
        }
    }

    #[test]
    fn last_updated_bounds_are_half_open() {
        let from = instant("2026-01-01T00:00:00Z");
        let to = instant("2026-01-02T00:00:00Z");
        let mut query = ListQuery::new(Partition::Type(ResourceType::Organization), 10);
        query.last_updated_from = Some(from.clone());
        query.last_updated_to = Some(to.clone());
        let range = sort_range(&query);
        assert!(range.contains(&time_sort_key(&from, "a").0));
        assert!(!range.contains(&time_sort_key(&to, "a").0));
        assert!(range.contains(&time_sort_key(&instant("2026-01-01T23:59:59.999Z"), "zz").0));
    }

    #[test]
    fn prefix_range_keeps_only_terms_with_the_prefix() {
        let query = ListQuery::new(
            Partition::Lookup {
                resource_type: ResourceType::Organization,
                param: "name".into(),
                prefix: "smi".into(),
            },
            10,
        );
        let range = sort_range(&query);
        assert!(range.contains(&term_sort_key("smi", "a").0));
        assert!(range.contains(&term_sort_key("smith", "a").0));
        assert!(!range.contains(&term_sort_key("sma", "a").0));
        assert!(!range.contains(&term_sort_key("sn", "a").0));
    }
}
