//! Per-source throttling of sign-in answers (policy: `member_signin::throttle`).
//!
//! Before an answer to the questions or the code reaches the identity provider, the
//! server looks up its two sources, the browser's transaction and the network address,
//! and refuses it ungraded while either must wait. A failed answer adds a failure to
//! both. Records live in the key-value store under hashes (an address is personal
//! data), expire a day after the last failure, and are written last-writer-wins: two
//! concurrent failures may count once, which costs an attacker at most a doubling of
//! one delay, never the member anything.

use fhir_store::KeyValueStore;
use member_signin::throttle::{SourceRecord, ThrottlePolicy, Verdict};

use crate::crypto::hash_secret;

const THROTTLE_NAMESPACE: &str = "signin-source";

/// The network address a request came from, as the entry point saw it (API Gateway's
/// `sourceIp` on Lambda), put in the request's extensions. Without it only the browser
/// transaction is throttled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

/// The store keys of an answer's sources.
pub(crate) fn sources(address: Option<&ClientAddress>, transaction_key: &str) -> Vec<String> {
    let mut keys = vec![format!("txn.{transaction_key}")];
    if let Some(ClientAddress(address)) = address.filter(|a| !a.0.is_empty()) {
        keys.push(format!("ip.{}", hash_secret(address)));
    }
    keys
}

async fn record<K: KeyValueStore>(kv: &K, key: &str) -> Option<SourceRecord> {
    match kv.get(THROTTLE_NAMESPACE, key).await {
        Ok(entry) => entry.and_then(|e| serde_json::from_value(e.value).ok()),
        Err(error) => {
            // Fail open for the throttle only: the member-level lock in the triggers
            // still bounds guessing, and a store fault must not shut members out.
            tracing::error!(%error, "sign-in throttle read failed");
            None
        }
    }
}

/// The latest moment any of the sources must wait until, if one must wait at `now`.
pub(crate) async fn wait_until<K: KeyValueStore>(
    kv: &K,
    policy: &ThrottlePolicy,
    sources: &[String],
    now: i64,
) -> Option<i64> {
    let mut until = None;
    for key in sources {
        if let Verdict::Wait { until: u } = policy.check(record(kv, key).await, now) {
            until = until.max(Some(u));
        }
    }
    until
}

/// Counts a failed answer against every source.
pub(crate) async fn failed<K: KeyValueStore>(
    kv: &K,
    policy: &ThrottlePolicy,
    sources: &[String],
    now: i64,
) {
    for key in sources {
        let next = policy.after_failure(record(kv, key).await, now);
        let Ok(value) = serde_json::to_value(next) else {
            continue;
        };
        if let Err(error) = kv
            .put(
                THROTTLE_NAMESPACE,
                key,
                &value,
                Some(policy.expires_at(now)),
            )
            .await
        {
            tracing::error!(%error, "sign-in throttle write failed");
        }
    }
}

/// What a source that must wait is told: the truth about itself (it says nothing about
/// any member, the wait is decided before the answer is looked at).
pub(crate) fn wait_message(until: i64, now: i64) -> String {
    let seconds = (until - now).max(1);
    let (amount, unit) = if seconds < 120 {
        (seconds, if seconds == 1 { "second" } else { "seconds" })
    } else {
        ((seconds + 59) / 60, "minutes")
    };
    format!(
        "Too many sign-in attempts from this browser or network. For your security, wait \
         {amount} {unit} before trying again."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_a_source_only_when_known_and_is_stored_hashed() {
        assert_eq!(sources(None, "t"), ["txn.t"]);
        let both = sources(Some(&ClientAddress("203.0.113.7".into())), "t");
        assert_eq!(both.len(), 2);
        assert!(!both[1].contains("203.0.113.7"));
        assert_eq!(sources(Some(&ClientAddress(String::new())), "t").len(), 1);
    }

    #[test]
    fn the_wait_is_said_in_seconds_then_minutes() {
        assert!(wait_message(130, 100).contains("wait 30 seconds"));
        assert!(wait_message(100 + 3600, 100).contains("wait 60 minutes"));
        assert!(wait_message(100, 100).contains("wait 1 second "));
    }
}
