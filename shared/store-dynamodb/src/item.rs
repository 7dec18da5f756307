//! Items of the single table, by hand: every attribute name and type is written here
//! once, so the mapping is easy to audit against `infra/dynamodb-keys.md`.
//!
//! Record items (current `CUR` and versions `V#…`) hold the resource's metadata, its
//! search index as JSON text and its body deflate-compressed, either inline (`z`) or,
//! when still too large for one item, as `nc` chunk items `V#{version}#C#{n}` (`d`).
//!
//! Key-value records (`K#{namespace}` / key) hold their value either as a number `n`
//! (integers, so `increment` is one UpdateItem ADD) or as JSON text `j`, their version
//! in `vid` and their expiry in `expires_at`, the table's TTL attribute.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use fhir::{Instant, ResourceType};
use fhir_store::keys::EntryKey;
use fhir_store::{KvEntry, ResourceRecord, StoreError, StoreResult};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
const RESOURCE_TYPE: &str = "rt";
pub const ID: &str = "id";
pub const VERSION: &str = "vid";
pub const LAST_UPDATED: &str = "lu";
const DELETED: &str = "del";
const INDEX: &str = "idx";
const BODY: &str = "z";
const CHUNK_COUNT: &str = "nc";
const CHUNK_DATA: &str = "d";
pub const LOOKUPS: &str = "lk";
/// A key-value record's value when it is an integer (a counter).
pub const KV_COUNT: &str = "n";
/// A key-value record's value otherwise, as JSON text.
pub const KV_JSON: &str = "j";
/// Unix seconds from which a key-value record is dead. The table's TTL attribute
/// (`template.yaml`), so its name is long and fixed: the sweeper reads it.
pub const EXPIRES_AT: &str = "expires_at";

/// The sort key of a resource's current item.
pub const CURRENT_SK: &str = "CUR";

/// A compressed body plus search index up to this size stays inline in the record item
/// (DynamoDB's item limit is 400 KB, names and metadata included).
pub const INLINE_LIMIT: usize = 350_000;
/// Bytes of compressed body per chunk item.
pub const CHUNK_SIZE: usize = 350_000;
/// Chunks are written in the version's transaction, which holds at most 100 items and
/// 4 MB: 10 chunks (3.5 MB) leave room for the current, version and look-up items.
pub const MAX_CHUNKS: usize = 10;

pub fn version_sk(version: u64) -> String {
    format!("V#{version:020}")
}

pub fn chunk_prefix(version: u64) -> String {
    format!("V#{version:020}#C#")
}

fn chunk_sk(version: u64, n: usize) -> String {
    format!("{}{n:03}", chunk_prefix(version))
}

/// A body ready to store: compressed, inline or split.
pub enum PackedBody {
    Inline(Vec<u8>),
    Chunked(Vec<Vec<u8>>),
}

impl PackedBody {
    /// Bytes this body adds to one transaction (chunks count once; inline bodies are in
    /// both the current and the version item).
    pub fn transaction_bytes(&self) -> usize {
        match self {
            PackedBody::Inline(z) => 2 * z.len(),
            PackedBody::Chunked(chunks) => chunks.iter().map(Vec::len).sum(),
        }
    }
}

pub fn pack_body(body: &str, index_len: usize) -> StoreResult<PackedBody> {
    let compressed = deflate(body.as_bytes())?;
    if compressed.len() + index_len <= INLINE_LIMIT {
        return Ok(PackedBody::Inline(compressed));
    }
    let chunks: Vec<Vec<u8>> = compressed.chunks(CHUNK_SIZE).map(<[u8]>::to_vec).collect();
    if chunks.len() > MAX_CHUNKS {
        return Err(StoreError::Backend(format!(
            "resource too large: {} bytes of JSON compress to {} bytes; the DynamoDB store takes at most {} compressed",
            body.len(),
            compressed.len(),
            MAX_CHUNKS * CHUNK_SIZE
        )));
    }
    Ok(PackedBody::Chunked(chunks))
}

fn deflate(bytes: &[u8]) -> StoreResult<Vec<u8>> {
    let mut encoder =
        DeflateEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::default());
    encoder
        .write_all(bytes)
        .map_err(|e| StoreError::Backend(format!("compress: {e}")))?;
    encoder
        .finish()
        .map_err(|e| StoreError::Backend(format!("compress: {e}")))
}

pub fn inflate(compressed: &[u8]) -> StoreResult<Arc<str>> {
    let mut text = String::with_capacity(compressed.len() * 4);
    DeflateDecoder::new(compressed)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::Corrupt(format!("body does not inflate to UTF-8: {e}")))?;
    Ok(Arc::from(text))
}

/// The record attributes shared by current and version items.
pub fn record_item(
    pk: &str,
    sk: String,
    record: &ResourceRecord,
    index_json: &str,
    body: &PackedBody,
) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(pk));
    item.insert(SK.into(), AttributeValue::S(sk));
    item.insert(RESOURCE_TYPE.into(), s(record.resource_type.as_str()));
    item.insert(ID.into(), s(&record.id));
    item.insert(VERSION.into(), n(record.version_id));
    item.insert(LAST_UPDATED.into(), s(record.last_updated.as_str()));
    item.insert(DELETED.into(), AttributeValue::Bool(record.deleted));
    item.insert(INDEX.into(), s(index_json));
    match body {
        PackedBody::Inline(z) => item.insert(BODY.into(), AttributeValue::B(Blob::new(z.clone()))),
        PackedBody::Chunked(chunks) => item.insert(CHUNK_COUNT.into(), n(chunks.len() as u64)),
    };
    item
}

/// Adds what only the current item carries: its partition entry (the sparse GSI keys,
/// absent for tombstones) and the look-up entries it owns, for the next write's diff.
pub fn add_current_attributes(item: &mut Item, partition: Option<&EntryKey>, lookups: &[EntryKey]) {
    if let Some(entry) = partition {
        item.insert(GSI1_PK.into(), s(&entry.pk));
        item.insert(GSI1_SK.into(), s(&entry.sk));
    }
    let lookups = lookups
        .iter()
        .map(|e| AttributeValue::L(vec![s(&e.pk), s(&e.sk)]))
        .collect();
    item.insert(LOOKUPS.into(), AttributeValue::L(lookups));
}

pub fn chunk_items(pk: &str, version: u64, chunks: &[Vec<u8>]) -> Vec<Item> {
    chunks
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let mut item = key(pk, chunk_sk(version, i));
            item.insert(
                CHUNK_DATA.into(),
                AttributeValue::B(Blob::new(data.clone())),
            );
            item
        })
        .collect()
}

/// A look-up entry: points at the resource whose current record the listing returns.
pub fn lookup_item(entry: &EntryKey, resource_type: ResourceType, id: &str) -> Item {
    let mut item = key(&entry.pk, entry.sk.clone());
    item.insert(RESOURCE_TYPE.into(), s(resource_type.as_str()));
    item.insert(ID.into(), s(id));
    item
}

pub fn key(pk: &str, sk: String) -> Item {
    HashMap::from([
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), AttributeValue::S(sk)),
    ])
}

/// A record item as read: metadata decoded, the body inline or still to fetch.
pub struct StoredRecord {
    pub resource_type: ResourceType,
    pub id: String,
    pub version_id: u64,
    pub last_updated: Instant,
    pub deleted: bool,
    pub index: fhir_search::SearchIndex,
    pub body: StoredBody,
}

pub enum StoredBody {
    Inline(Arc<str>),
    Chunked { count: usize },
}

impl StoredRecord {
    pub fn with_body(self, body: Arc<str>) -> ResourceRecord {
        ResourceRecord {
            resource_type: self.resource_type,
            id: self.id,
            version_id: self.version_id,
            last_updated: self.last_updated,
            deleted: self.deleted,
            body,
            index: self.index,
        }
    }
}

pub fn decode_record(item: &Item) -> StoreResult<StoredRecord> {
    let resource_type = get_s(item, RESOURCE_TYPE)?
        .parse::<ResourceType>()
        .map_err(|_| corrupt(RESOURCE_TYPE, "unknown resource type"))?;
    let last_updated = Instant::parse(get_s(item, LAST_UPDATED)?)
        .map_err(|_| corrupt(LAST_UPDATED, "not an instant"))?;
    let index =
        serde_json::from_str(get_s(item, INDEX)?).map_err(|e| corrupt(INDEX, &e.to_string()))?;
    let body = match (item.get(BODY), item.get(CHUNK_COUNT)) {
        (Some(AttributeValue::B(z)), _) => StoredBody::Inline(inflate(z.as_ref())?),
        (None, Some(_)) => StoredBody::Chunked {
            count: get_n(item, CHUNK_COUNT)? as usize,
        },
        _ => return Err(corrupt(BODY, "neither an inline body nor chunks")),
    };
    Ok(StoredRecord {
        resource_type,
        id: get_s(item, ID)?.to_owned(),
        version_id: get_n(item, VERSION)?,
        last_updated,
        deleted: matches!(item.get(DELETED), Some(AttributeValue::Bool(true))),
        index,
        body,
    })
}

pub fn decode_chunk(item: &Item) -> StoreResult<&[u8]> {
    match item.get(CHUNK_DATA) {
        Some(AttributeValue::B(data)) => Ok(data.as_ref()),
        _ => Err(corrupt(CHUNK_DATA, "missing chunk data")),
    }
}

/// The look-up entries a current item owns (written by [`add_current_attributes`]).
pub fn decode_lookups(item: &Item) -> StoreResult<Vec<EntryKey>> {
    let Some(AttributeValue::L(entries)) = item.get(LOOKUPS) else {
        return Ok(Vec::new());
    };
    entries
        .iter()
        .map(|entry| match entry {
            AttributeValue::L(pair) => match pair.as_slice() {
                [AttributeValue::S(pk), AttributeValue::S(sk)] => Ok(EntryKey {
                    pk: pk.clone(),
                    sk: sk.clone(),
                }),
                _ => Err(corrupt(LOOKUPS, "entry is not [pk, sk]")),
            },
            _ => Err(corrupt(LOOKUPS, "entry is not a list")),
        })
        .collect()
}

/// A look-up entry's target resource.
pub fn decode_target(item: &Item) -> StoreResult<(ResourceType, String)> {
    let resource_type = get_s(item, RESOURCE_TYPE)?
        .parse::<ResourceType>()
        .map_err(|_| corrupt(RESOURCE_TYPE, "unknown resource type"))?;
    Ok((resource_type, get_s(item, ID)?.to_owned()))
}

/// The attribute that holds a key-value record's value: integers as a number (so an
/// integer `put` is a counter `increment` can ADD to), anything else as its JSON text.
pub fn kv_value(value: &serde_json::Value, json: String) -> (&'static str, AttributeValue) {
    match value.as_i64() {
        Some(count) => (KV_COUNT, AttributeValue::N(count.to_string())),
        None => (KV_JSON, AttributeValue::S(json)),
    }
}

/// A key-value record as stored, live or not (the caller checks the expiry).
pub fn decode_kv(item: &Item) -> StoreResult<KvEntry> {
    let value = match (item.get(KV_COUNT), item.get(KV_JSON)) {
        (Some(_), None) => serde_json::Value::from(get_i64(item, KV_COUNT)?),
        (None, Some(_)) => serde_json::from_str(get_s(item, KV_JSON)?)
            .map_err(|e| corrupt(KV_JSON, &e.to_string()))?,
        _ => return Err(corrupt(KV_JSON, "a record needs exactly one of n and j")),
    };
    let expires_at = match item.get(EXPIRES_AT) {
        Some(_) => Some(get_i64(item, EXPIRES_AT)?),
        None => None,
    };
    Ok(KvEntry {
        value,
        version: get_n(item, VERSION)?,
        expires_at,
    })
}

pub fn get_s<'i>(item: &'i Item, name: &str) -> StoreResult<&'i str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(corrupt(name, "missing or not a string")),
    }
}

pub fn get_n(item: &Item, name: &str) -> StoreResult<u64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| corrupt(name, "not an unsigned integer")),
        _ => Err(corrupt(name, "missing or not a number")),
    }
}

pub fn get_i64(item: &Item, name: &str) -> StoreResult<i64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(name, "not an i64")),
        _ => Err(corrupt(name, "missing or not a number")),
    }
}

pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn corrupt(attribute: &str, what: &str) -> StoreError {
    StoreError::Corrupt(format!("DynamoDB attribute {attribute}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_stay_inline_and_inflate_identically() {
        let body = r#"{"resourceType":"Patient","name":[{"family":"Doe"}]}"#;
        let PackedBody::Inline(z) = pack_body(body, 10).expect("pack") else {
            panic!("a small body must be inline");
        };
        assert_eq!(&*inflate(&z).expect("inflate"), body);
    }

    #[test]
    fn bodies_over_the_inline_limit_split_into_bounded_chunks() {
        let mut state: u32 = 7;
        let noise: String = (0..900_000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'!' + ((state >> 16) % 90) as u8)
            })
            .collect();
        let PackedBody::Chunked(chunks) = pack_body(&noise, 10).expect("pack") else {
            panic!("incompressible 900 kB must be chunked");
        };
        assert!(chunks.len() >= 2 && chunks.iter().all(|c| c.len() <= CHUNK_SIZE));
        assert_eq!(&*inflate(&chunks.concat()).expect("inflate"), noise);
    }
}
