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

/// Counts one use by `subject` in the window containing `now` (Unix seconds), in
/// the namespace `{namespace}.{subject}`.
/// A subject the store cannot key (control characters, separators) is an error,
/// not a free pass.
pub async fn spend<K: KeyValueStore + ?Sized>(
    kv: &K,
    namespace: &str,
    subject: &str,
    budget: Budget,
    now: i64,
) -> StoreResult<Spend> {
    let window = budget.window_secs.max(1);
    let start = now - now.rem_euclid(window);
    // One namespace (one DynamoDB partition) per subject: a busy API's counters are
    // spread over its clients instead of all landing on one hot key.
    let partition = format!("{namespace}.{subject}");
    let key = start.to_string();
    validate_key(&partition, &key)?;
    // The counter outlives its window a little, so a late request still finds it.
    let used = kv
        .increment(&partition, &key, 1, Some(start + window + 60))
        .await?;
    if used > i64::from(budget.limit) {
        return Ok(Spend::Exhausted {
            retry_after_secs: (start + window - now).max(1),
        });
    }
    Ok(Spend::Allowed)
}
