//! Per-set accumulation of changes. Shared resources (the billing provider,
//! the payer, a member with several claims) are mentioned by many claims of
//! one set; their merges are folded into one change at the position of the
//! first mention, which keeps the output small and the store writes few.
//! EOB changes are never folded: their order (Merge, then Cancel) matters.

use std::collections::HashMap;

use fhir::ResourceType;
use serde_json::Value;

use crate::{Action, Change, merge};

#[derive(Debug, Default)]
pub struct Changes {
    list: Vec<Change>,
    shared: HashMap<(ResourceType, String), usize>,
}

impl Changes {
    /// A merge; folded into an earlier merge of the same shared resource.
    pub fn merge(&mut self, resource_type: ResourceType, id: String, value: Value) {
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

    pub fn cancel(&mut self, id: String, reason: String) {
        self.list.push(Change {
            resource_type: ResourceType::ExplanationOfBenefit,
            id,
            action: Action::Cancel { reason },
        });
    }

    pub fn into_vec(self) -> Vec<Change> {
        self.list
    }
}
