//! Writing one accepted transaction set's changes into the [`ResourceStore`].
//!
//! Every change goes through [`edi_fhir::apply`], the pure merge rule, inside
//! [`fhir_store::update_with`] (read-modify-write with conflict retry), and the
//! search index is recomputed with [`fhir_search::index_resource`]. Because `apply`
//! is idempotent (applying a change the stored resource already reflects returns
//! `None`), re-running a file after a crash writes only what the crashed run had not.
//!
//! Changes to the same resource within one set are folded into one new version (the
//! payer Organization appears in every claim), in their original order. Different
//! resources are written concurrently: `apply` looks at one resource only, so their
//! order does not matter.

use std::collections::HashMap;

use edi_fhir::Change;
use fhir::ResourceType;
use fhir_store::{
    ResourceRecord, ResourceStore, ResourceWrite, StoreError, StoreResult, WriteCondition,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::report::WriteCounts;

/// What writing one resource did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Applies one set's changes with at most `concurrency` resources in flight.
pub async fn apply_set<S: ResourceStore + ?Sized>(
    store: &S,
    changes: &[Change],
    concurrency: usize,
) -> StoreResult<WriteCounts> {
    // Groups travel as indices: a borrowed element type in the stream would make the
    // future's lifetimes too specific for `tokio::spawn`.
    let written: Vec<Written> = stream::iter(by_resource(changes))
        .map(|(resource_type, id, indices)| async move {
            let group: Vec<&Change> = indices.iter().filter_map(|&i| changes.get(i)).collect();
            apply_resource(store, resource_type, &id, &group).await
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut counts = WriteCounts::default();
    for w in written {
        match w {
            Written::Created => counts.created += 1,
            Written::Updated => counts.updated += 1,
            Written::Unchanged => counts.unchanged += 1,
        }
    }
    Ok(counts)
}

/// The changes grouped by resource (as indices into `changes`), groups in order of
/// first appearance, changes within a group in their original order.
fn by_resource(changes: &[Change]) -> Vec<(ResourceType, String, Vec<usize>)> {
    let mut index: HashMap<(ResourceType, &str), usize> = HashMap::new();
    let mut groups: Vec<(ResourceType, String, Vec<usize>)> = Vec::new();
    for (i, change) in changes.iter().enumerate() {
        let slot = *index
            .entry((change.resource_type, change.id.as_str()))
            .or_insert_with(|| {
                groups.push((change.resource_type, change.id.clone(), Vec::new()));
                groups.len() - 1
            });
        if let Some((_, _, group)) = groups.get_mut(slot) {
            group.push(i);
        }
    }
    groups
}

async fn apply_resource<S: ResourceStore + ?Sized>(
    store: &S,
    resource_type: ResourceType,
    id: &str,
    changes: &[&Change],
) -> StoreResult<Written> {
    let mut existed = false;
    let mut corrupt = None;
    let written = fhir_store::update_with(store, resource_type, id, |current| {
        let live = current.filter(|r| !r.deleted);
        existed = live.is_some();
        let body = match live.map(parse_body).transpose() {
            Ok(body) => body,
            Err(e) => {
                corrupt = Some(e);
                return None;
            }
        };
        let next = fold(body, changes)?;
        let index = fhir_search::index_resource(resource_type, &next);
        Some(ResourceWrite {
            resource_type,
            id: id.to_owned(),
            resource: next,
            index,
            deleted: false,
            // update_with sets the real condition from what it read.
            condition: WriteCondition::Absent,
        })
    })
    .await?;
    if let Some(e) = corrupt {
        return Err(e);
    }
    Ok(match (written, existed) {
        (None, _) => Written::Unchanged,
        (Some(_), false) => Written::Created,
        (Some(_), true) => Written::Updated,
    })
}

/// The resource after every change, or `None` when none of them changes anything.
fn fold(mut current: Option<Value>, changes: &[&Change]) -> Option<Value> {
    let mut changed = false;
    for change in changes {
        if let Some(next) = edi_fhir::apply(current.as_ref(), change) {
            current = Some(next);
            changed = true;
        }
    }
    current.filter(|_| changed)
}

fn parse_body(record: &ResourceRecord) -> StoreResult<Value> {
    serde_json::from_str(&record.body).map_err(|e| {
        StoreError::Corrupt(format!(
            "{}/{} version {} is not JSON: {e}",
            record.resource_type, record.id, record.version_id
        ))
    })
}
