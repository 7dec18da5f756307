//! The member roster: every stored Patient, in [`SHARDS`] look-up partitions, so that
//! "every member" (a bulk export for Payer-to-Payer) pages through Queries, never a
//! Scan. Each Patient's index carries one look-up term, `(`[`param`]`(shard), id)`,
//! so the store writes and removes the roster entry in the same transaction as the
//! Patient itself: no second write path to forget, and a deleted Patient leaves it.
//!
//! Why shards: one partition key for 10 M members would take every Patient write of
//! an 834 load on one DynamoDB partition (about 1,000 writes/s at most); 256 keys
//! spread them, and let an export read 256 partitions in parallel, ~40,000 members
//! each at 10 M.

/// Roster partitions. Fixed: changing it moves every member to another shard.
pub const SHARDS: u32 = 256;

/// The look-up parameter name of one shard (not a search parameter: searches cannot
/// name it, only the roster reads it).
pub fn param(shard: u32) -> String {
    format!("_roster-{shard:03}")
}

/// The shard of a Patient id: FNV-1a, stable across builds and platforms (unlike
/// std's hasher), so writers and readers always agree.
pub fn shard(patient_id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in patient_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}
