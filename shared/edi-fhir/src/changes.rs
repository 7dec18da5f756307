//! Per-set accumulation of changes. Shared resources (the billing provider,
//! the payer, a member with several claims) are mentioned by many claims of
//! one set; their merges are folded into one change at the position of the
//! first mention, which keeps the output small and the store writes few.
//! EOB changes are never folded: their order (Merge, then Cancel) matters.

use std::collections::HashMap;

use fhir::ResourceType;
use serde_json::Value;

use crate::{Action, Change, merge};

/// Collects a set's changes in a list, or (streaming) hands each to a sink
/// as soon as it is made, keeping only the ids of directory resources.
#[derive(Default)]
pub struct Changes<'f> {
    list: Vec<Change>,
    shared: HashMap<(ResourceType, String), usize>,
    sink: Option<&'f mut dyn FnMut(Change)>,
}

impl<'f> Changes<'f> {
    /// Streaming: every change goes to `sink`; a directory resource
    /// (Organization, Practitioner) only the first time the set names it.
    pub fn streaming(sink: &'f mut dyn FnMut(Change)) -> Self {
        Changes {
            list: Vec::new(),
            shared: HashMap::new(),
            sink: Some(sink),
        }
    }

    /// A merge; folded into an earlier merge of the same shared resource.
    pub fn merge(&mut self, resource_type: ResourceType, id: String, value: Value) {
        if let Some(sink) = self.sink.as_mut() {
            let directory = matches!(
                resource_type,
                ResourceType::Organization | ResourceType::Practitioner
            );
            if directory {
                let key = (resource_type, id.clone());
                if self.shared.contains_key(&key) {
                    return;
                }
                self.shared.insert(key, 0);
            }
            sink(Change {
                resource_type,
                id,
                action: Action::Merge(value),
            });
            return;
        }
        if resource_type == ResourceType::ExplanationOfBenefit {
            self.list.push(Change {
                resource_type,
                id,
                action: Action::Merge(value),
            });
            return;
        }
        let key = (resource_type, id);
        if let Some(&at) = self.shared.get(&key) {
            if let Some(Change {
                action: Action::Merge(current),
                ..
            }) = self.list.get_mut(at)
            {
                merge::merge_shared(current, &value);
            }
            return;
        }
        self.shared.insert(key.clone(), self.list.len());
        self.list.push(Change {
            resource_type: key.0,
            id: key.1,
            action: Action::Merge(value),
        });
    }

    /// True when this set already has a change for the resource: directory
    /// resources (providers, the payer) are then not rebuilt for every claim
    /// that names them, which is most of the mapping cost in big files.
    pub fn has(&self, resource_type: ResourceType, id: &str) -> bool {
        self.shared.contains_key(&(resource_type, id.to_owned()))
    }

    pub fn cancel(&mut self, id: String, reason: String) {
        let change = Change {
            resource_type: ResourceType::ExplanationOfBenefit,
            id,
            action: Action::Cancel { reason },
        };
        match self.sink.as_mut() {
            Some(sink) => sink(change),
            None => self.list.push(change),
        }
    }

    pub fn into_vec(self) -> Vec<Change> {
        self.list
    }
}
