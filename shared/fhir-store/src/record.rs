use std::sync::Arc;

use fhir::{Instant, ResourceType};
use fhir_search::SearchIndex;
use serde::{Deserialize, Serialize};

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub resource_type: ResourceType,
    pub id: String,
    pub version_id: u64,
    pub last_updated: Instant,
    /// A deletion tombstone: reads answer 410 Gone, listings leave it out.
    pub deleted: bool,
    /// The complete resource JSON with `id` and `meta` filled in, exactly as served.
    /// Kept as text so responses splice it in without re-serialising.
    pub body: Arc<str>,
    pub index: SearchIndex,
}

/// A request to write the next version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceWrite {
    pub resource_type: ResourceType,
    pub id: String,
    /// The resource; `id` and `meta.versionId`/`meta.lastUpdated` are set by the store.
    pub resource: serde_json::Value,
    pub index: SearchIndex,
    pub deleted: bool,
    pub condition: WriteCondition,
}

impl ResourceWrite {
    /// A live (not deleted) version of `resource`, with the search index computed
    /// from it: how every writer outside the stores should build a write, so that
    /// the index always describes the body it is stored with.
    pub fn indexed(
        resource_type: ResourceType,
        id: impl Into<String>,
        resource: serde_json::Value,
        condition: WriteCondition,
    ) -> Self {
        ResourceWrite {
            resource_type,
            id: id.into(),
            index: fhir_search::index_resource(resource_type, &resource),
            resource,
            deleted: false,
            condition,
        }
    }
}

/// When a write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCondition {
    /// Always (last writer wins). Only for loading data nobody else writes.
    Always,
    /// Only if the resource was never written. A deleted tombstone still exists: a
    /// write over it needs `VersionIs(tombstone version)` (which `update_with` uses).
    Absent,
    /// Only if the current version is exactly this one.
    VersionIs(u64),
}

/// A partition is what one DynamoDB Query serves. See the crate docs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Partition {
    /// One member's current resources of one member-owned type, by `meta.lastUpdated`.
    Compartment {
        patient: String,
        resource_type: ResourceType,
    },
    /// All current resources of one directory type, by `meta.lastUpdated`.
    Type(ResourceType),
    /// A directory type's look-up terms for one parameter, by term, filtered to the
    /// terms that start with `prefix` (exactly one term with
    /// [`crate::keys::exact_term_prefix`]).
    Lookup {
        resource_type: ResourceType,
        param: String,
        prefix: String,
    },
}

/// An opaque position inside a partition: listings resume strictly after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SortKey(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListQuery {
    pub partition: Partition,
    /// Resume strictly after this position (from a previous page's records).
    pub after: Option<SortKey>,
    /// Only for Compartment and Type partitions: keep `meta.lastUpdated` within
    /// `[from, to)` (either bound optional), applied as a key condition.
    pub last_updated_from: Option<Instant>,
    pub last_updated_to: Option<Instant>,
    pub descending: bool,
    pub limit: usize,
}

impl ListQuery {
    pub fn new(partition: Partition, limit: usize) -> Self {
        ListQuery {
            partition,
            after: None,
            last_updated_from: None,
            last_updated_to: None,
            descending: false,
            limit,
        }
    }
}

/// One page of a listing: the records, each with its position, and whether more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub entries: Vec<(SortKey, ResourceRecord)>,
    /// True when the partition may hold more entries after the last one returned.
    pub more: bool,
}

/// One page of a listing's keys only: each entry's position and the id of the
/// resource it belongs to, without reading or decoding the resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    pub entries: Vec<(SortKey, String)>,
    /// True when the partition may hold more entries after the last one returned.
    pub more: bool,
}
