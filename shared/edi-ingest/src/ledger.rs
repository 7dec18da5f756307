//! The ledger of processed files, in the [`KeyValueStore`] namespace [`NAMESPACE`].
//!
//! A file's record goes through two states:
//!
//! ```text
//! (absent) --insert--> in-progress {started_at} --replace(version)--> done {status, totals}
//! ```
//!
//! * `insert` is atomic, so of two invocations for the same file (a duplicate S3
//!   event) exactly one claims it; the other sees `in-progress` and backs off with a
//!   retryable error, or sees `done` and does nothing.
//! * A run that crashed (the process died, the Lambda timed out) leaves
//!   `in-progress` behind. Once it is older than the stale limit, the next attempt
//!   takes it over with a version-checked `replace` (so only one taker wins) and
//!   re-runs the file from the start. That is safe because every write goes through
//!   the idempotent `edi_fhir::apply`: changes already applied are no-ops.
//! * A run that fails cleanly (a store error) deletes its claim, so the retry can
//!   start at once.
//!
//! Records never expire: the ledger is the audit of what was ingested.

use fhir_store::{KeyValueStore, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::FileIdentity;
use crate::report::{Disposition, Totals};

/// The key-value namespace of ledger records.
pub const NAMESPACE: &str = "edi-ingest";

/// A ledger record's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum LedgerEntry {
    /// A run holds the file since `started_at` (unix seconds).
    InProgress { file: String, started_at: i64 },
    /// The file was processed; what came of it.
    Done {
        file: String,
        finished_at: i64,
        disposition: Disposition,
        totals: Totals,
    },
}

/// The result of trying to claim a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This run owns the file; `version` is the ledger record's, for [`finish`].
    /// `resumed` is true when a stale run's claim was taken over.
    Owned { version: u64, resumed: bool },
    /// Already processed: nothing to do.
    Done(LedgerEntry),
    /// Another run holds a fresh claim.
    Busy,
}

/// Claims `file` for this run at `now` (unix seconds). A claim older than
/// `stale_after_secs` is considered abandoned by a crashed run and taken over.
pub async fn claim<K: KeyValueStore + ?Sized>(
    kv: &K,
    file: &FileIdentity,
    now: i64,
    stale_after_secs: i64,
) -> StoreResult<Claim> {
    let mine = to_value(&LedgerEntry::InProgress {
        file: file.label().to_owned(),
        started_at: now,
    });
    // Two rounds: the record may vanish (a failed run releasing it) between our
    // insert and our read.
    for _ in 0..2 {
        if kv.insert(NAMESPACE, file.ledger_key(), &mine, None).await? {
            return Ok(Claim::Owned {
                version: 1,
                resumed: false,
            });
        }
        let Some(found) = kv.get(NAMESPACE, file.ledger_key()).await? else {
            continue;
        };
        return match serde_json::from_value::<LedgerEntry>(found.value) {
            Ok(done @ LedgerEntry::Done { .. }) => Ok(Claim::Done(done)),
            Ok(LedgerEntry::InProgress { started_at, .. })
                if now.saturating_sub(started_at) < stale_after_secs =>
            {
                Ok(Claim::Busy)
            }
            // Stale, or unreadable (written by an incompatible version): take over.
            _ => take_over(kv, file, found.version, &mine).await,
        };
    }
    Ok(Claim::Busy)
}

async fn take_over<K: KeyValueStore + ?Sized>(
    kv: &K,
    file: &FileIdentity,
    stale_version: u64,
    mine: &Value,
) -> StoreResult<Claim> {
    if kv
        .replace(NAMESPACE, file.ledger_key(), stale_version, mine, None)
        .await?
    {
        Ok(Claim::Owned {
            version: stale_version + 1,
            resumed: true,
        })
    } else {
        // Another run took it over first.
        Ok(Claim::Busy)
    }
}

/// Records the file as done. Returns false when this run no longer owned the claim
/// (a slow run whose claim went stale and was taken over): the other run's result
/// stands, and ours was the same, because the same file gives the same changes.
pub async fn finish<K: KeyValueStore + ?Sized>(
    kv: &K,
    file: &FileIdentity,
    version: u64,
    entry: &LedgerEntry,
) -> StoreResult<bool> {
    kv.replace(
        NAMESPACE,
        file.ledger_key(),
        version,
        &to_value(entry),
        None,
    )
    .await
}

/// Gives the claim up after a clean failure, so a retry need not wait for it to go
/// stale. Only our own claim is removed: if it was taken over, it is left alone.
pub async fn release<K: KeyValueStore + ?Sized>(
    kv: &K,
    file: &FileIdentity,
    version: u64,
) -> StoreResult<()> {
    match kv.get(NAMESPACE, file.ledger_key()).await? {
        Some(entry) if entry.version == version => kv.delete(NAMESPACE, file.ledger_key()).await,
        _ => Ok(()),
    }
}

fn to_value(entry: &LedgerEntry) -> Value {
    // Serialising a plain enum of strings and integers cannot fail.
    serde_json::to_value(entry).unwrap_or(Value::Null)
}
