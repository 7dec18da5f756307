//! The part of `put` that does not depend on the backend: checking the condition and
//! building the next version. Shared so that every adapter numbers, dates and stamps
//! versions exactly alike; each adapter then makes the check-and-write atomic.

use std::sync::Arc;

use fhir::Instant;
use serde_json::{Map, Value};

use crate::{ResourceRecord, ResourceWrite, StoreError, StoreResult, WriteCondition};

/// What an adapter knows about the current version when it prepares a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub version_id: u64,
    pub last_updated: Instant,
}

impl From<&ResourceRecord> for Previous {
    fn from(record: &ResourceRecord) -> Self {
        Previous {
            version_id: record.version_id,
            last_updated: record.last_updated.clone(),
        }
    }
}

/// Whether `condition` allows a write over `previous`. A tombstone counts as existing:
/// `Absent` means "never written", which is what a conditional create needs.
pub fn condition_holds(condition: WriteCondition, previous: Option<&Previous>) -> bool {
    match (condition, previous) {
        (WriteCondition::Always, _) => true,
        (WriteCondition::Absent, previous) => previous.is_none(),
        (WriteCondition::VersionIs(expected), Some(previous)) => previous.version_id == expected,
        (WriteCondition::VersionIs(_), None) => false,
    }
}

/// Checks the condition and builds the record to store as the next version.
///
/// `last_updated` is now, or one millisecond after the previous version when the clock
/// has not moved on (or went back), so versions are strictly ordered in time and
/// `_lastUpdated` listings never see two versions of one resource at the same instant.
pub fn next_version(
    write: &ResourceWrite,
    previous: Option<&Previous>,
) -> StoreResult<ResourceRecord> {
    if !condition_holds(write.condition, previous) {
        return Err(StoreError::Conflict {
            resource_type: write.resource_type,
            id: write.id.clone(),
        });
    }
    let version_id = previous.map_or(1, |p| p.version_id + 1);
    let last_updated = next_last_updated(previous.map(|p| &p.last_updated));
    let body = stamp_body(&write.resource, &write.id, version_id, &last_updated)?;
    Ok(ResourceRecord {
        resource_type: write.resource_type,
        id: write.id.clone(),
        version_id,
        last_updated,
        deleted: write.deleted,
        body: Arc::from(body),
        index: write.index.clone(),
    })
}

/// Now, but strictly after `previous`.
pub fn next_last_updated(previous: Option<&Instant>) -> Instant {
    let now = Instant::now();
    match previous {
        Some(previous) if now <= *previous => previous.next_millisecond(),
        _ => now,
    }
}

/// The body as served: the resource with `id`, `meta.versionId` and `meta.lastUpdated`
/// set, keeping any other `meta` element (profile, security, tag).
fn stamp_body(
    resource: &Value,
    id: &str,
    version_id: u64,
    last_updated: &Instant,
) -> StoreResult<String> {
    let Value::Object(fields) = resource else {
        return Err(StoreError::Backend(
            "a resource must be a JSON object".to_owned(),
        ));
    };
    let mut fields = fields.clone();
    fields.insert("id".to_owned(), Value::String(id.to_owned()));
    let meta = fields
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert(
            "versionId".to_owned(),
            Value::String(version_id.to_string()),
        );
        meta.insert(
            "lastUpdated".to_owned(),
            Value::String(last_updated.to_string()),
        );
    }
    serde_json::to_string(&Value::Object(fields))
        .map_err(|e| StoreError::Backend(format!("cannot serialise resource: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::ResourceType;
    use serde_json::json;

    fn write(condition: WriteCondition) -> ResourceWrite {
        ResourceWrite {
            resource_type: ResourceType::Patient,
            id: "p1".into(),
            resource: json!({"resourceType": "Patient", "meta": {"profile": ["x"]}}),
            index: Default::default(),
            deleted: false,
            condition,
        }
    }

    #[test]
    fn stamping_keeps_other_meta_and_sets_id() {
        let record = next_version(&write(WriteCondition::Always), None).expect("first version");
        let body: Value = serde_json::from_str(&record.body).expect("json");
        assert_eq!(body["id"], "p1");
        assert_eq!(body["meta"]["versionId"], "1");
        assert_eq!(body["meta"]["profile"], json!(["x"]));
        assert_eq!(body["meta"]["lastUpdated"], record.last_updated.as_str());
    }

    #[test]
    fn last_updated_moves_past_a_future_previous_version() {
        let future = Instant::parse("2999-01-01T00:00:00Z").expect("instant");
        let previous = Previous {
            version_id: 4,
            last_updated: future.clone(),
        };
        let record =
            next_version(&write(WriteCondition::VersionIs(4)), Some(&previous)).expect("next");
        assert_eq!(record.version_id, 5);
        assert_eq!(record.last_updated, future.next_millisecond());
    }

    #[test]
    fn conditions_reject_the_wrong_state() {
        let previous = Previous {
            version_id: 2,
            last_updated: Instant::now(),
        };
        assert!(!condition_holds(WriteCondition::Absent, Some(&previous)));
        assert!(!condition_holds(
            WriteCondition::VersionIs(1),
            Some(&previous)
        ));
        assert!(!condition_holds(WriteCondition::VersionIs(1), None));
        assert!(condition_holds(
            WriteCondition::VersionIs(2),
            Some(&previous)
        ));
        assert!(condition_holds(WriteCondition::Always, None));
    }
}
