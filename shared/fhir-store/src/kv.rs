//! The key-value port: small records that are not FHIR resources.
//!
//! Authorization codes (single use, 60 s), refresh-token handles (rotated), sign-in
//! transactions (15 min), attempt counters (brute-force lockout), registered apps and
//! the EDI ingest ledger live here. They need what [`crate::ResourceStore`] does not
//! give: expiry, atomic single-use reads ([`KeyValueStore::take`]) and atomic counters
//! ([`KeyValueStore::increment`]), and none of its versions, partitions or search index.
//!
//! # Rules every adapter follows
//! * A record lives in a *namespace* (one per kind: `auth-code`, `refresh`, …) under a
//!   *key*. Both are checked by [`validate_key`]: non-empty, at most [`MAX_KEY_BYTES`]
//!   bytes, no control characters, and no `#` in a namespace, because the adapters
//!   build their storage keys with those characters as separators.
//! * A value is any JSON up to [`MAX_VALUE_BYTES`] serialised ([`encode_value`]), so a
//!   record always fits in one DynamoDB item with room for its keys.
//! * A record is *live* while `expires_at` is `None` or later than now ([`is_live`]).
//!   Every read and conditional write compares with the clock at that moment, so an
//!   expired record is absent for callers even before DynamoDB's TTL sweeper (which
//!   may take days) deletes it.
//! * Every write bumps `version`: 1 for a record created where none is stored, else
//!   the stored version + 1, even over an expired record that is still stored, so a
//!   caller holding a version of the dead record cannot `replace` its successor.
//!   After a `take`/`delete` (or the TTL sweep) numbering restarts at 1, so a version
//!   is only meaningful for as long as the record lives.

use std::future::Future;

use serde_json::Value;

use crate::{StoreError, StoreResult};

/// Namespaces and keys have at most this many bytes (UTF-8).
pub const MAX_KEY_BYTES: usize = 256;
/// A value's JSON text has at most this many bytes: a DynamoDB item holds 400 KB, and
/// this leaves room for attribute names, keys and numbers.
pub const MAX_VALUE_BYTES: usize = 300_000;
/// The character that separates a namespace from what adapters put around it.
const NAMESPACE_SEPARATOR: char = '#';

/// A stored value with its optimistic-concurrency version and optional expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct KvEntry {
    pub value: Value,
    /// Bumped by every write; the token [`KeyValueStore::replace`] compares.
    pub version: u64,
    /// Unix seconds; the record is gone from that second on. `None`: never expires.
    pub expires_at: Option<i64>,
}

impl KvEntry {
    /// Whether the record is still live at `now` (unix seconds).
    pub fn is_live(&self, now: i64) -> bool {
        is_live(self.expires_at, now)
    }
}

/// The key-value port. Implementations: DynamoDB (on AWS) and redb (embedded, local).
///
/// Every method validates `namespace` and `key` first ([`StoreError::InvalidKey`]) and
/// every write its value ([`StoreError::InvalidValue`]). All methods take `&self`;
/// implementations are shared across concurrent requests.
pub trait KeyValueStore: Send + Sync {
    /// Writes the record if `when` allows it (judged with [`WriteWhen::decide`] against
    /// the stored record at the moment of writing, atomically); Ok(false) when it does
    /// not. The one write adapters implement: `insert`, `put` and `replace` are this
    /// with their rule, so the rules live here once.
    fn write(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        expires_at: Option<i64>,
        when: WriteWhen,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Creates the record only if it is absent or expired; Ok(false) when a live one
    /// exists. Of concurrent inserts of one key, exactly one returns true.
    fn insert(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        expires_at: Option<i64>,
    ) -> impl Future<Output = StoreResult<bool>> + Send {
        self.write(
            namespace,
            key,
            value,
            expires_at,
            WriteWhen::AbsentOrExpired,
        )
    }

    /// Creates or replaces unconditionally (last writer wins).
    fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        expires_at: Option<i64>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        let written = self.write(namespace, key, value, expires_at, WriteWhen::Always);
        async move { written.await.map(|_| ()) }
    }

    /// The live record (expired records read as absent even before DynamoDB's TTL
    /// sweeper deletes them). Strongly consistent: it sees every completed write.
    fn get(
        &self,
        namespace: &str,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<KvEntry>>> + Send;

    /// Replaces only if the live record's version is `expected_version`; Ok(false)
    /// otherwise (including when absent). This is how a refresh-token handle rotates
    /// exactly once: read, then replace with the version read.
    fn replace(
        &self,
        namespace: &str,
        key: &str,
        expected_version: u64,
        value: &Value,
        expires_at: Option<i64>,
    ) -> impl Future<Output = StoreResult<bool>> + Send {
        let when = WriteWhen::LiveVersion(expected_version);
        self.write(namespace, key, value, expires_at, when)
    }

    /// Atomically reads and deletes the live record: of any number of concurrent
    /// callers, at most one gets Some. This is what makes an authorization code single
    /// use. An expired record is left for the sweeper and reads as None.
    fn take(
        &self,
        namespace: &str,
        key: &str,
    ) -> impl Future<Output = StoreResult<Option<KvEntry>>> + Send;

    /// Deletes the record, live or expired; deleting an absent record is not an error.
    fn delete(&self, namespace: &str, key: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Atomically adds `delta` to a numeric counter and returns the new value.
    ///
    /// When the record is absent or expired the counter starts from 0 and takes
    /// `expires_at`; a live counter keeps its expiry (a fixed window: failed sign-ins
    /// counted for 15 minutes from the first, not extended by each new one). A live
    /// record whose value is not an integer, or a sum outside `i64`, is
    /// [`StoreError::InvalidValue`] and changes nothing. A counter is an ordinary
    /// record: `get` shows it as a JSON integer, and `put` of an integer makes one.
    fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        expires_at: Option<i64>,
    ) -> impl Future<Output = StoreResult<i64>> + Send;

    /// Live records of one namespace whose key starts with `prefix` (may be empty), in
    /// key order (by UTF-8 bytes), at most `limit`.
    fn list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<(String, KvEntry)>>> + Send;
}

/// The condition of a write: what tells `insert`, `put` and `replace` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteWhen {
    /// `put`: whatever is stored.
    Always,
    /// `insert`: nothing is stored, or only an expired record.
    AbsentOrExpired,
    /// `replace`: the live record has this version.
    LiveVersion(u64),
}

/// What the rules need to know of a stored record, live or expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredVersion {
    pub version: u64,
    pub expires_at: Option<i64>,
}

impl WriteWhen {
    /// The version to write the record under, or `None` when the write is refused,
    /// given what is stored (live or expired) at `now`. Adapters that read before they
    /// write (redb) call this; DynamoDB states the same rule as a condition expression.
    pub fn decide(self, stored: Option<StoredVersion>, now: i64) -> Option<u64> {
        let live = stored.filter(|s| is_live(s.expires_at, now));
        let allowed = match self {
            WriteWhen::Always => true,
            WriteWhen::AbsentOrExpired => live.is_none(),
            WriteWhen::LiveVersion(expected) => live.is_some_and(|s| s.version == expected),
        };
        allowed.then(|| next_version(stored))
    }
}

/// Every write bumps the stored version, live or expired; 1 where nothing is stored.
pub fn next_version(stored: Option<StoredVersion>) -> u64 {
    stored.map_or(1, |s| s.version + 1)
}

/// A counter's expiry after an increment: a live counter keeps its own (a fixed
/// window), an absent or expired one starts a new window ending at `requested`.
pub fn counter_expiry(live: Option<&KvEntry>, requested: Option<i64>) -> Option<i64> {
    live.map_or(requested, |entry| entry.expires_at)
}

/// Whether a record with this expiry is live at `now`: it dies at `expires_at`.
pub fn is_live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|at| at > now)
}

/// The clock every expiry is compared with (re-exported so adapters need one import).
pub use fhir::clock::unix_now;

/// Checks a namespace and key: refusing here is what keeps adapters from building a
/// storage key that collides with, or sorts inside, another record's.
pub fn validate_key(namespace: &str, key: &str) -> StoreResult<()> {
    validate_namespace(namespace, key)?;
    check_part("key", key, namespace, key)
}

/// Checks a `list` prefix like a key, except that it may be empty.
pub fn validate_prefix(namespace: &str, prefix: &str) -> StoreResult<()> {
    validate_namespace(namespace, prefix)?;
    if prefix.is_empty() {
        return Ok(());
    }
    check_part("prefix", prefix, namespace, prefix)
}

fn validate_namespace(namespace: &str, key: &str) -> StoreResult<()> {
    check_part("namespace", namespace, namespace, key)?;
    if namespace.contains(NAMESPACE_SEPARATOR) {
        return Err(invalid_key(
            namespace,
            key,
            &format!("the namespace contains {NAMESPACE_SEPARATOR:?}"),
        ));
    }
    Ok(())
}

fn check_part(what: &str, part: &str, namespace: &str, key: &str) -> StoreResult<()> {
    if part.is_empty() {
        return Err(invalid_key(namespace, key, &format!("the {what} is empty")));
    }
    if part.len() > MAX_KEY_BYTES {
        return Err(invalid_key(
            namespace,
            key,
            &format!(
                "the {what} has {} bytes, at most {MAX_KEY_BYTES} are allowed",
                part.len()
            ),
        ));
    }
    if part.chars().any(char::is_control) {
        return Err(invalid_key(
            namespace,
            key,
            &format!("the {what} contains a control character"),
        ));
    }
    Ok(())
}

fn invalid_key(namespace: &str, key: &str, why: &str) -> StoreError {
    let shown = |s: &str| s.chars().take(64).collect::<String>();
    StoreError::InvalidKey(format!(
        "{why} (namespace {:?}, key {:?})",
        shown(namespace),
        shown(key)
    ))
}

/// The value's JSON text, refused when over [`MAX_VALUE_BYTES`].
pub fn encode_value(namespace: &str, key: &str, value: &Value) -> StoreResult<String> {
    let text = serde_json::to_string(value).map_err(|e| {
        StoreError::InvalidValue(format!("cannot serialise {namespace}/{key}: {e}"))
    })?;
    if text.len() > MAX_VALUE_BYTES {
        return Err(StoreError::InvalidValue(format!(
            "the value of {namespace}/{key} is {} bytes of JSON, at most {MAX_VALUE_BYTES} are allowed",
            text.len()
        )));
    }
    Ok(text)
}

/// The counter after adding `delta` to the live record `current` (0 when `None`).
/// Shared so both adapters refuse non-counters and overflow with the same message.
pub fn add_to_counter(
    namespace: &str,
    key: &str,
    current: Option<&Value>,
    delta: i64,
) -> StoreResult<i64> {
    let start = match current {
        None => 0,
        Some(value) => value.as_i64().ok_or_else(|| {
            StoreError::InvalidValue(format!(
                "cannot increment {namespace}/{key}: its live value is not an integer"
            ))
        })?,
    };
    start.checked_add(delta).ok_or_else(|| {
        StoreError::InvalidValue(format!(
            "cannot increment {namespace}/{key}: {start} + {delta} overflows"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_checked_for_length_separators_and_emptiness() {
        assert!(validate_key("auth-code", "abc/DEF#1:é").is_ok());
        assert!(validate_key("n", &"k".repeat(MAX_KEY_BYTES)).is_ok());
        for (namespace, key) in [
            ("", "k"),
            ("n", ""),
            ("a#b", "k"),
            ("n", "a\0b"),
            ("n", "a\u{1}b"),
            ("n\n", "k"),
        ] {
            assert!(
                matches!(validate_key(namespace, key), Err(StoreError::InvalidKey(_))),
                "{namespace:?}/{key:?} must be refused"
            );
        }
        let long = "é".repeat(MAX_KEY_BYTES / 2 + 1);
        assert!(matches!(
            validate_key("n", &long),
            Err(StoreError::InvalidKey(_))
        ));
        assert!(validate_prefix("n", "").is_ok());
    }

    #[test]
    fn records_die_at_their_expiry_second() {
        assert!(is_live(None, i64::MAX));
        assert!(is_live(Some(11), 10));
        assert!(!is_live(Some(10), 10));
    }

    #[test]
    fn writes_follow_their_rule_and_bump_the_stored_version() {
        let now = 100;
        let live = Some(StoredVersion {
            version: 4,
            expires_at: Some(101),
        });
        let expired = Some(StoredVersion {
            version: 4,
            expires_at: Some(100),
        });
        assert_eq!(WriteWhen::Always.decide(None, now), Some(1));
        assert_eq!(WriteWhen::Always.decide(live, now), Some(5));
        assert_eq!(WriteWhen::AbsentOrExpired.decide(None, now), Some(1));
        assert_eq!(WriteWhen::AbsentOrExpired.decide(live, now), None);
        // Over an expired record the version still climbs, so an old version
        // cannot replace the successor.
        assert_eq!(WriteWhen::AbsentOrExpired.decide(expired, now), Some(5));
        assert_eq!(WriteWhen::LiveVersion(4).decide(live, now), Some(5));
        assert_eq!(WriteWhen::LiveVersion(3).decide(live, now), None);
        assert_eq!(WriteWhen::LiveVersion(4).decide(expired, now), None);
        assert_eq!(WriteWhen::LiveVersion(1).decide(None, now), None);
    }

    #[test]
    fn a_live_counter_keeps_its_window() {
        let live = KvEntry {
            value: json!(2),
            version: 2,
            expires_at: Some(50),
        };
        assert_eq!(counter_expiry(Some(&live), Some(90)), Some(50));
        assert_eq!(counter_expiry(None, Some(90)), Some(90));
    }

    #[test]
    fn values_over_the_limit_are_refused() {
        let fits = json!("x".repeat(MAX_VALUE_BYTES - 2));
        assert!(encode_value("n", "k", &fits).is_ok());
        let over = json!("x".repeat(MAX_VALUE_BYTES - 1));
        assert!(matches!(
            encode_value("n", "k", &over),
            Err(StoreError::InvalidValue(_))
        ));
    }

    #[test]
    fn counters_refuse_non_integers_and_overflow() {
        assert_eq!(add_to_counter("n", "k", None, -3).ok(), Some(-3));
        assert_eq!(add_to_counter("n", "k", Some(&json!(4)), 3).ok(), Some(7));
        assert!(add_to_counter("n", "k", Some(&json!(1.5)), 1).is_err());
        assert!(add_to_counter("n", "k", Some(&json!("1")), 1).is_err());
        assert!(add_to_counter("n", "k", Some(&json!(i64::MAX)), 1).is_err());
    }
}
