//! How a record is laid out in a redb value.
//!
//! `[header length: u32 LE][header: JSON][body: UTF-8]`. The body stays raw bytes
//! (not a JSON string inside JSON), so reading a record costs one UTF-8 check of the
//! body and a small JSON parse of the header, and the body comes back byte-identical.

use std::sync::Arc;

use fhir::{Instant, ResourceType};
use fhir_search::SearchIndex;
use fhir_store::keys::EntryKey;
use fhir_store::{ResourceRecord, StoreError, StoreResult};
use serde::{Deserialize, Serialize};

/// A stored record, plus (for current items) the index entries it owns, so that the
/// next write removes exactly those even if the key rules or SearchIndex evolve.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record: ResourceRecord,
    pub partition: Option<EntryKey>,
    pub lookups: Vec<EntryKey>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    resource_type: ResourceType,
    id: String,
    version_id: u64,
    last_updated: Instant,
    deleted: bool,
    index: SearchIndex,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lookups: Vec<(String, String)>,
}

pub fn encode(stored: &Stored) -> StoreResult<Vec<u8>> {
    let record = &stored.record;
    let header = Header {
        resource_type: record.resource_type,
        id: record.id.clone(),
        version_id: record.version_id,
        last_updated: record.last_updated.clone(),
        deleted: record.deleted,
        index: record.index.clone(),
        partition: stored
            .partition
            .as_ref()
            .map(|e| (e.pk.clone(), e.sk.clone())),
        lookups: stored
            .lookups
            .iter()
            .map(|e| (e.pk.clone(), e.sk.clone()))
            .collect(),
    };
    let header = serde_json::to_vec(&header)
        .map_err(|e| StoreError::Backend(format!("cannot encode record: {e}")))?;
    let length = u32::try_from(header.len())
        .map_err(|_| StoreError::Backend("record header over 4 GiB".into()))?;
    let mut bytes = Vec::with_capacity(4 + header.len() + record.body.len());
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(record.body.as_bytes());
    Ok(bytes)
}

/// The header as reads need it: the owned index entries (only a write's diff needs
/// them) are skipped by the parser, never built.
#[derive(Deserialize)]
struct RecordHeader {
    resource_type: ResourceType,
    id: String,
    version_id: u64,
    last_updated: Instant,
    deleted: bool,
    index: SearchIndex,
}

/// The record alone, for reads.
pub fn decode_record(bytes: &[u8]) -> StoreResult<ResourceRecord> {
    let (header, body) = split(bytes)?;
    let header: RecordHeader =
        serde_json::from_slice(header).map_err(|e| corrupt(&format!("header: {e}")))?;
    let body = std::str::from_utf8(body).map_err(|_| corrupt("body is not UTF-8"))?;
    Ok(ResourceRecord {
        resource_type: header.resource_type,
        id: header.id,
        version_id: header.version_id,
        last_updated: header.last_updated,
        deleted: header.deleted,
        body: Arc::from(body),
        index: header.index,
    })
}

fn split(bytes: &[u8]) -> StoreResult<(&[u8], &[u8])> {
    let (length, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("value shorter than its header length"))?;
    let length =
        usize::try_from(u32::from_le_bytes(*length)).map_err(|_| corrupt("header length"))?;
    if rest.len() < length {
        return Err(corrupt("value shorter than its header"));
    }
    Ok(rest.split_at(length))
}

pub fn decode(bytes: &[u8]) -> StoreResult<Stored> {
    let (header, body) = split(bytes)?;
    let header: Header =
        serde_json::from_slice(header).map_err(|e| corrupt(&format!("header: {e}")))?;
    let body = std::str::from_utf8(body).map_err(|_| corrupt("body is not UTF-8"))?;
    let entry = |(pk, sk)| EntryKey { pk, sk };
    Ok(Stored {
        record: ResourceRecord {
            resource_type: header.resource_type,
            id: header.id,
            version_id: header.version_id,
            last_updated: header.last_updated,
            deleted: header.deleted,
            body: Arc::from(body),
            index: header.index,
        },
        partition: header.partition.map(entry),
        lookups: header.lookups.into_iter().map(entry).collect(),
    })
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redb record: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_their_entries() {
        let stored = Stored {
            record: ResourceRecord {
                resource_type: ResourceType::Organization,
                id: "o1".into(),
                version_id: 3,
                last_updated: Instant::now(),
                deleted: false,
                body: Arc::from(r#"{"resourceType":"Organization","name":"caf\u00e9 \"x\""}"#),
                index: SearchIndex::default(),
            },
            partition: Some(EntryKey {
                pk: "T#Organization".into(),
                sk: "t#o1".into(),
            }),
            lookups: vec![EntryKey {
                pk: "L#Organization#name".into(),
                sk: "cafe\u{1}o1".into(),
            }],
        };
        let bytes = encode(&stored).expect("encode");
        let decoded = decode(&bytes).expect("decode");
        assert_eq!(decoded.record, stored.record);
        assert_eq!(decode_record(&bytes).expect("decode"), stored.record);
        assert_eq!(decoded.partition, stored.partition);
        assert_eq!(decoded.lookups, stored.lookups);
    }

    #[test]
    fn truncated_values_are_corrupt_not_panics() {
        assert!(matches!(decode(&[1, 0]), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode(&[200, 0, 0, 0, b'{']),
            Err(StoreError::Corrupt(_))
        ));
    }
}
