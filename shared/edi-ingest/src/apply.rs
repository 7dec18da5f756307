//! Writing one accepted transaction set's changes into the [`ResourceStore`].
//!
//! Every change goes through [`edi_fhir::apply`], the pure merge rule, inside
//! [`fhir_store::update_with`] (read-modify-write with conflict retry), and the
//! search index is recomputed ([`ResourceWrite::indexed`]). Because `apply`
//! is idempotent (applying a change the stored resource already reflects returns
//! `None`), re-running a file after a crash writes only what the crashed run had not.
//!
//! Changes to the same resource within one batch are folded into one new version (the
//! payer Organization appears in every claim), in their original order. Different
//! resources are written concurrently: `apply` looks at one resource only, so their
//! order does not matter. Batches are applied one after the other, so the changes of
//! one resource keep their order across batches too.
//!
//! A large set arrives in several batches ([`crate::Ingestor`] streams it), and a
//! resource named in more than one batch (a member with many claims) is written once
//! per batch. The ingestor folds the per-batch outcomes so that the report still
//! counts each resource of a set once, as if the set had been applied in one batch.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

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
pub(crate) enum Written {
    Created,
    Updated,
    Unchanged,
}

impl Written {
    /// The outcome of two writes of one resource, as one write of both would report
    /// it: the first write that changed something decides.
    fn then(self, later: Written) -> Written {
        match self {
            Written::Unchanged => later,
            Written::Created | Written::Updated => self,
        }
    }
}

/// Applies one set's changes with at most `concurrency` resources in flight.
pub async fn apply_set<S: ResourceStore + ?Sized>(
    store: &S,
    changes: &[Change],
    concurrency: usize,
) -> StoreResult<WriteCounts> {
    let mut tally = SetTally::default();
    tally.add(apply_batch(store, changes, concurrency).await?);
    Ok(tally.counts())
}

/// Applies a batch of changes (in order per resource) with at most `concurrency`
/// resources in flight; what happened to each resource.
pub(crate) async fn apply_batch<S: ResourceStore + ?Sized>(
    store: &S,
    changes: &[Change],
    concurrency: usize,
) -> StoreResult<Vec<(ResourceType, String, Written)>> {
    // Groups travel as indices: a borrowed element type in the stream would make the
    // future's lifetimes too specific for `tokio::spawn`.
    stream::iter(by_resource(changes))
        .map(|(resource_type, id, indices)| async move {
            let group: Vec<&Change> = indices.iter().filter_map(|&i| changes.get(i)).collect();
            let written = apply_resource(store, resource_type, &id, &group).await?;
            Ok((resource_type, id, written))
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await
}

/// The write counts of one set applied in several batches, each resource counted
/// once. Holds the set's resource ids (never logged), not their content.
#[derive(Debug, Default)]
pub(crate) struct SetTally {
    resources: HashMap<(ResourceType, String), Written>,
}

impl SetTally {
    pub(crate) fn add(&mut self, batch: Vec<(ResourceType, String, Written)>) {
        for (resource_type, id, written) in batch {
            match self.resources.entry((resource_type, id)) {
                Entry::Occupied(mut seen) => {
                    let folded = seen.get().then(written);
                    seen.insert(folded);
                }
                Entry::Vacant(slot) => {
                    slot.insert(written);
                }
            }
        }
    }

    pub(crate) fn counts(&self) -> WriteCounts {
        let mut counts = WriteCounts::default();
        for written in self.resources.values() {
            match written {
                Written::Created => counts.created += 1,
                Written::Updated => counts.updated += 1,
                Written::Unchanged => counts.unchanged += 1,
            }
        }
        counts
    }
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
        // update_with sets the real condition from what it read.
        Some(ResourceWrite::indexed(
            resource_type,
            id,
            next,
            WriteCondition::Absent,
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_written_in_several_batches_counts_once() {
        let mut tally = SetTally::default();
        let patient = |w| (ResourceType::Patient, "p1".to_owned(), w);
        let org = |w| (ResourceType::Organization, "o1".to_owned(), w);
        let eob = |w| (ResourceType::ExplanationOfBenefit, "e1".to_owned(), w);
        tally.add(vec![
            patient(Written::Created),
            org(Written::Unchanged),
            eob(Written::Unchanged),
        ]);
        tally.add(vec![
            patient(Written::Updated),
            org(Written::Updated),
            eob(Written::Unchanged),
        ]);
        assert_eq!(
            tally.counts(),
            WriteCounts {
                created: 1,
                updated: 1,
                unchanged: 1
            }
        );
    }
}
