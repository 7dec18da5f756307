//! Request budgets: at most `limit` uses per fixed window of `window_secs` per
//! subject (an API client), counted with the key-value port's atomic
//! [`KeyValueStore::increment`], so every function instance (and the local server)
//! shares one count per client.
//!
//! A fixed window rather than a sliding one: one counter write per request, and a
//! client can at worst spend two windows' budget across a boundary, which is what a
//! budget meant to stop one app from starving the rest can afford.

use crate::StoreResult;
use crate::kv::{KeyValueStore, validate_key};

/// At most `limit` uses per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub window_secs: i64,
}

/// What spending one use came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Allowed,
    /// Over budget: the window ends in `retry_after_secs` (at least 1).
    Exhausted {
        retry_after_secs: i64,
    },
}

/// Where one window's count of `subject` lives, and how long until it ends.
struct Window {
    partition: String,
    key: String,
    end: i64,
}

impl Budget {
    fn window(&self, namespace: &str, subject: &str, now: i64) -> StoreResult<Window> {
        let length = self.window_secs.max(1);
        let start = now - now.rem_euclid(length);
        // One namespace (one DynamoDB partition) per subject: a busy API's counters are
        // spread over its clients instead of all landing on one hot key.
        let window = Window {
            partition: format!("{namespace}.{subject}"),
            key: start.to_string(),
            end: start + length,
        };
        validate_key(&window.partition, &window.key)?;
        Ok(window)
    }
}

/// Counts one use in `window`; the uses so far.
async fn count<K: KeyValueStore + ?Sized>(kv: &K, window: &Window) -> StoreResult<i64> {
    // The counter outlives its window a little, so a late request still finds it.
    kv.increment(&window.partition, &window.key, 1, Some(window.end + 60))
        .await
}

/// Counts one use by `subject` in the window containing `now` (Unix seconds), in
/// the namespace `{namespace}.{subject}`, and returns the uses so far in it. A subject
/// the store cannot key (control characters, separators) is an error.
pub async fn record<K: KeyValueStore + ?Sized>(
    kv: &K,
    namespace: &str,
    subject: &str,
    budget: Budget,
    now: i64,
) -> StoreResult<i64> {
    count(kv, &budget.window(namespace, subject, now)?).await
}

/// Without counting a use: `Some(seconds until the window ends)` when `subject` has
/// already used its whole budget in the window containing `now`. For budgets of
/// failures, counted with [`record`] only when one happens.
pub async fn exhausted<K: KeyValueStore + ?Sized>(
    kv: &K,
    namespace: &str,
    subject: &str,
    budget: Budget,
    now: i64,
) -> StoreResult<Option<i64>> {
    let window = budget.window(namespace, subject, now)?;
    let used = kv
        .get(&window.partition, &window.key)
        .await?
        .and_then(|entry| entry.value.as_i64())
        .unwrap_or(0);
    Ok((used >= i64::from(budget.limit)).then(|| (window.end - now).max(1)))
}

/// Counts one use by `subject` (as [`record`]) and says whether it was within the
/// budget. A subject the store cannot key is an error, not a free pass.
pub async fn spend<K: KeyValueStore + ?Sized>(
    kv: &K,
    namespace: &str,
    subject: &str,
    budget: Budget,
    now: i64,
) -> StoreResult<Spend> {
    let window = budget.window(namespace, subject, now)?;
    if count(kv, &window).await? > i64::from(budget.limit) {
        return Ok(Spend::Exhausted {
            retry_after_secs: (window.end - now).max(1),
        });
    }
    Ok(Spend::Allowed)
}
