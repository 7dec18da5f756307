//! The two brute-force guards: the per-member failure counter (across sessions, the
//! lock state; per-source delays are the authorization server's, see `throttle`) and
//! the one-time code (hash only, expiry, a few tries, single use).
//!
//! Both live in the key-value store under [`member_key`](crate::secret::member_key),
//! never under an email or username, and rely on its atomic operations: `increment`
//! for the counter, `replace` (version-conditional) for a code's tries and `take` for
//! its single use.

use fhir_store::KeyValueStore;
use fhir_store::kv::unix_now;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::TriggerError;
use crate::ports::{CodeSender, PortError, TriggerConfig};
use secrets::constant_time_eq;

/// Failed answers per member, a fixed window from the first failure.
pub const FAILURE_NAMESPACE: &str = "signin-failures";
/// The verdict on the questions, per sign-in: the code step applies it (it matters
/// when the member was locked and the questions went ungraded).
pub const DEFERRED_NAMESPACE: &str = "signin-deferred";
/// How long a deferred verdict is kept: longer than a sign-in transaction lives.
const DEFERRED_TTL_SECS: i64 = 30 * 60;
/// Codes sent per member per code window, so a script cannot make us send mail endlessly.
pub const SENT_NAMESPACE: &str = "signin-code-sent";
/// The member's current one-time code: its keyed hash and tries.
pub const CODE_NAMESPACE: &str = "signin-code";

fn store_error(error: fhir_store::StoreError) -> TriggerError {
    TriggerError::Port(PortError(error.to_string()))
}

/// The key of one sign-in's deferred verdict: the member and a hash of the transaction.
fn deferred_key(member: &str, transaction: &str) -> String {
    format!("{member}.{}", crate::secret::member_key(transaction))
}

/// Remembers whether the questions were answered right in this sign-in.
pub async fn defer_verdict<K: KeyValueStore>(
    kv: &K,
    member: &str,
    transaction: &str,
    right: bool,
) -> Result<(), TriggerError> {
    kv.put(
        DEFERRED_NAMESPACE,
        &deferred_key(member, transaction),
        &Value::Bool(right),
        Some(unix_now() + DEFERRED_TTL_SECS),
    )
    .await
    .map_err(store_error)
}

/// The deferred verdict of this sign-in; `true` when there is none (the questions were
/// graded when answered).
pub async fn deferred_verdict<K: KeyValueStore>(
    kv: &K,
    member: &str,
    transaction: &str,
) -> Result<bool, TriggerError> {
    let entry = kv
        .get(DEFERRED_NAMESPACE, &deferred_key(member, transaction))
        .await
        .map_err(store_error)?;
    Ok(entry.is_none_or(|e| e.value == Value::Bool(true)))
}

/// Whether the member has used up their failures in the current window.
pub async fn is_locked<K: KeyValueStore>(
    kv: &K,
    config: &TriggerConfig,
    member: &str,
) -> Result<bool, TriggerError> {
    let entry = kv
        .get(FAILURE_NAMESPACE, member)
        .await
        .map_err(store_error)?;
    Ok(entry
        .and_then(|e| e.value.as_i64())
        .is_some_and(|n| n >= config.max_failures))
}

/// Counts one failure (atomically, so concurrent sessions cannot both slip under the cap).
pub async fn record_failure<K: KeyValueStore>(
    kv: &K,
    config: &TriggerConfig,
    member: &str,
) -> Result<(), TriggerError> {
    let expires = unix_now() + config.failure_window_secs;
    let failures = kv
        .increment(FAILURE_NAMESPACE, member, 1, Some(expires))
        .await
        .map_err(store_error)?;
    if failures == config.max_failures {
        // A lock is a security event (someone is guessing); the key is a hash, not PHI.
        tracing::warn!(
            member_key = member,
            "member sign-in locked after repeated failures: questions ungraded until the code"
        );
    }
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
struct CodeRecord {
    code_id: String,
    hash: String,
    tries: u32,
}

/// What [`issue_code`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// The challenge id of the code the member can now type.
    Code(String),
    /// Nothing was sent: the member already had the most codes a window allows. The
    /// window ends at `until` (Unix seconds).
    LimitReached { until: i64 },
}

/// A fresh code id, or the current one when the member is retrying the same code.
///
/// A new code is drawn from the CSPRNG, only its keyed hash is stored (with the TTL),
/// and it is sent. On a retry nothing is drawn or sent: the code already mailed stays
/// valid for its remaining tries. A retry whose code is gone (used up, expired) gets
/// an id with no record behind it, so every answer fails.
pub async fn issue_code<K: KeyValueStore, S: CodeSender>(
    kv: &K,
    sender: &S,
    config: &TriggerConfig,
    member: &str,
    email: &str,
    retry: bool,
) -> Result<Issued, TriggerError> {
    if retry {
        let current = kv.get(CODE_NAMESPACE, member).await.map_err(store_error)?;
        let record = current.and_then(|e| serde_json::from_value::<CodeRecord>(e.value).ok());
        return match record {
            Some(record) => Ok(Issued::Code(record.code_id)),
            None => random_token().map(Issued::Code),
        };
    }
    let now = unix_now();
    let sent = kv
        .increment(
            SENT_NAMESPACE,
            member,
            1,
            Some(now + config.code_window_secs),
        )
        .await
        .map_err(store_error)?;
    if sent > config.max_codes_sent {
        tracing::warn!(
            member_key = member,
            "one-time code not sent: too many codes in the window"
        );
        // The window is the counter's own expiry (fixed from the first code).
        let window = kv.get(SENT_NAMESPACE, member).await.map_err(store_error)?;
        let until = window
            .and_then(|entry| entry.expires_at)
            .unwrap_or(now + config.code_window_secs);
        return Ok(Issued::LimitReached { until });
    }
    let code = random_code(config.code_digits)?;
    let code_id = random_token()?;
    let record = CodeRecord {
        hash: config.secret.code_hash(member, &code_id, &code),
        code_id: code_id.clone(),
        tries: 0,
    };
    let value =
        serde_json::to_value(&record).map_err(|e| TriggerError::Port(PortError(e.to_string())))?;
    kv.put(
        CODE_NAMESPACE,
        member,
        &value,
        Some(now + config.code_ttl_secs.min(600)),
    )
    .await
    .map_err(store_error)?;
    sender
        .send(email, &code)
        .await
        .map_err(TriggerError::Port)?;
    Ok(Issued::Code(code_id))
}

/// Whether `answer` is the live code of challenge `code_id`. A right answer consumes
/// the code; a wrong one uses up a try, and the last try deletes it.
pub async fn check_code<K: KeyValueStore>(
    kv: &K,
    config: &TriggerConfig,
    member: &str,
    code_id: &str,
    answer: &str,
) -> Result<bool, TriggerError> {
    let Some(entry) = kv.get(CODE_NAMESPACE, member).await.map_err(store_error)? else {
        return Ok(false);
    };
    let Ok(mut record) = serde_json::from_value::<CodeRecord>(entry.value.clone()) else {
        return Ok(false);
    };
    let typed: String = answer.chars().filter(char::is_ascii_digit).collect();
    let same_challenge = constant_time_eq(&record.code_id, code_id);
    // Any key of the ring: a code mailed just before a rotation still works.
    let same_code = config
        .secret
        .code_matches(member, code_id, &typed, &record.hash);
    if same_challenge & same_code {
        // Single use: of two concurrent right answers only the one that takes this very
        // version of the record succeeds.
        let taken = kv.take(CODE_NAMESPACE, member).await.map_err(store_error)?;
        return Ok(taken.is_some_and(|t| t.version == entry.version));
    }
    record.tries += 1;
    if record.tries >= config.code_tries {
        kv.delete(CODE_NAMESPACE, member)
            .await
            .map_err(store_error)?;
    } else {
        let value = serde_json::to_value(&record).unwrap_or(Value::Null);
        // A lost race means another try was counted first; either way this one failed.
        kv.replace(
            CODE_NAMESPACE,
            member,
            entry.version,
            &value,
            entry.expires_at,
        )
        .await
        .map_err(store_error)?;
    }
    Ok(false)
}

/// A uniformly random code of `digits` digits, clamped to 6..=8.
fn random_code(digits: u32) -> Result<String, TriggerError> {
    secrets::random_digits(digits.clamp(6, 8)).map_err(no_randomness)
}

pub(super) fn random_token() -> Result<String, TriggerError> {
    crate::secret::random_token().map_err(no_randomness)
}

fn no_randomness(error: secrets::NoRandomness) -> TriggerError {
    TriggerError::Port(PortError(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_configured_digits() {
        for (asked, expected) in [(4, 6), (6, 6), (7, 7), (8, 8), (12, 8)] {
            let code = random_code(asked).unwrap_or_default();
            assert_eq!(code.len(), expected);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
