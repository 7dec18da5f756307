//! Per-set accumulation of changes. Shared resources (the billing provider,
//! the payer, a member with several claims) are mentioned by many claims of
//! one set; their merges are folded into one change at the position of the
//! first mention, which keeps the output small and the store writes few.
//! EOB changes are never folded: their order (Merge, then Cancel) matters.
//!
//! Every resource is serialised to JSON once, here, as the mapper hands it
//! over ([`Resource`]); a `serde_json::Value` is built only to fold a second
//! mention of a shared resource into the first.

use std::collections::HashMap;

use fhir::ResourceType;
use serde_json::Value;

use crate::write::ToJson;
use crate::{Action, Change, Resource, merge};

/// Where the changes go.
enum Mode<'f> {
    /// Collected in a list, shared resources folded.
    List,
    /// Handed to a sink one by one; directory resources (Organization,
    /// Practitioner) only the first time the set names them.
    Sink(&'f mut dyn FnMut(Change)),
    /// Collected as [`Mode::Sink`] would hand them out, their JSON written
    /// one after the other in `arena` (kept from set to set by the caller),
    /// until it exceeds `budget` bytes; then dropped, and the rest is not
    /// serialised.
    Buffer {
        budget: usize,
        arena: &'f mut String,
        pending: Vec<Pending>,
    },
    /// Nothing is kept or serialised: only the mapper's verdict matters.
    Verdict,
}

/// A buffered change: its JSON is `arena[json]`.
struct Pending {
    resource_type: ResourceType,
    id: String,
    json: std::ops::Range<usize>,
    /// `Some` for a cancel.
    cancel: Option<String>,
}

/// A set's changes, in one of the modes above.
pub struct Changes<'f> {
    mode: Mode<'f>,
    list: Vec<Change>,
    /// Shared resources already seen in this set, by type and id: their
    /// position in `list` (list mode) or nothing (the other modes, which
    /// remember directory resources only).
    shared: HashMap<ResourceType, HashMap<String, usize>>,
    /// List mode: shared resources folded from several mentions, by
    /// position, serialised again by [`Changes::into_vec`].
    folded: HashMap<usize, Value>,
    /// Reused serialisation buffer.
    scratch: String,
}

impl Default for Changes<'_> {
    fn default() -> Self {
        Self::with_mode(Mode::List)
    }
}

impl<'f> Changes<'f> {
    fn with_mode(mode: Mode<'f>) -> Self {
        Changes {
            mode,
            list: Vec::new(),
            shared: HashMap::new(),
            folded: HashMap::new(),
            scratch: String::new(),
        }
    }

    /// Streaming: every change goes to `sink`; a directory resource
    /// (Organization, Practitioner) only the first time the set names it.
    pub fn streaming(sink: &'f mut dyn FnMut(Change)) -> Self {
        Self::with_mode(Mode::Sink(sink))
    }

    /// The streaming changes of a set, kept in `arena` while their JSON
    /// fits in `budget` bytes ([`Changes::overflowed`] tells when it did
    /// not; [`Changes::drain`] hands them out).
    pub fn buffered(budget: usize, arena: &'f mut String) -> Self {
        arena.clear();
        Self::with_mode(Mode::Buffer {
            budget,
            arena,
            pending: Vec::new(),
        })
    }

    /// No output at all: for a verdict-only pass.
    pub fn verdict_only() -> Self {
        Self::with_mode(Mode::Verdict)
    }

    /// Buffer or verdict mode: true once the budget was exceeded (the buffered changes
    /// were dropped and the set must be mapped again to hand them out).
    pub fn overflowed(&self) -> bool {
        matches!(self.mode, Mode::Verdict)
    }

    fn is_directory(resource_type: ResourceType) -> bool {
        matches!(
            resource_type,
            ResourceType::Organization | ResourceType::Practitioner
        )
    }

    fn position(&self, resource_type: ResourceType, id: &str) -> Option<usize> {
        self.shared.get(&resource_type)?.get(id).copied()
    }

    fn remember(&mut self, resource_type: ResourceType, id: &str, at: usize) {
        self.shared
            .entry(resource_type)
            .or_default()
            .insert(id.to_owned(), at);
    }

    /// A merge of a resource built as a `Value` (the directory resources).
    pub fn merge(&mut self, resource_type: ResourceType, id: String, value: Value) {
        self.merge_typed(resource_type, id, &value);
    }

    /// A merge; folded into an earlier merge of the same shared resource
    /// (list mode), or dropped when a directory resource was already
    /// handed out (the other modes).
    pub fn merge_typed<T: ToJson + ?Sized>(
        &mut self,
        resource_type: ResourceType,
        id: String,
        value: &T,
    ) {
        if !matches!(self.mode, Mode::List) {
            if Self::is_directory(resource_type) {
                if self.position(resource_type, &id).is_some() {
                    return;
                }
                self.remember(resource_type, &id, 0);
            }
            let resource = match &mut self.mode {
                Mode::Verdict => return,
                Mode::Buffer {
                    budget,
                    arena,
                    pending,
                } => {
                    let start = arena.len();
                    value.write_json(arena);
                    pending.push(Pending {
                        resource_type,
                        id,
                        json: start..arena.len(),
                        cancel: None,
                    });
                    if arena.len() > *budget {
                        self.overflow();
                    }
                    return;
                }
                _ => Resource::serialise(value, &mut self.scratch),
            };
            self.emit(Change {
                resource_type,
                id,
                action: Action::Merge(resource),
            });
            return;
        }
        if resource_type == ResourceType::ExplanationOfBenefit {
            let resource = Resource::serialise(value, &mut self.scratch);
            self.list.push(Change {
                resource_type,
                id,
                action: Action::Merge(resource),
            });
            return;
        }
        if let Some(at) = self.position(resource_type, &id) {
            let current = match self.folded.remove(&at) {
                Some(v) => Some(v),
                None => match self.list.get(at).map(|c| &c.action) {
                    Some(Action::Merge(r)) => Some(r.to_value()),
                    _ => None,
                },
            };
            if let Some(mut current) = current {
                self.scratch.clear();
                value.write_json(&mut self.scratch);
                let incoming = serde_json::from_str(&self.scratch).unwrap_or(Value::Null);
                merge::merge_shared(&mut current, &incoming);
                self.folded.insert(at, current);
            }
            return;
        }
        self.remember(resource_type, &id, self.list.len());
        let resource = Resource::serialise(value, &mut self.scratch);
        self.list.push(Change {
            resource_type,
            id,
            action: Action::Merge(resource),
        });
    }

    /// The buffer is full: drop it and only look for the verdict from now on.
    fn overflow(&mut self) {
        if let Mode::Buffer { arena, .. } = &mut self.mode {
            arena.clear();
        }
        self.mode = Mode::Verdict;
    }

    /// Hands a change to the sink or the list (merges in buffer mode are
    /// written to the arena by [`Changes::merge_typed`]).
    fn emit(&mut self, change: Change) {
        match &mut self.mode {
            Mode::Sink(sink) => sink(change),
            Mode::Buffer {
                budget,
                arena,
                pending,
            } => {
                let Action::Cancel { reason } = change.action else {
                    return;
                };
                // Cancels are few and small; count them against the budget.
                let used = arena.len() + pending.len() * 64 + reason.len();
                pending.push(Pending {
                    resource_type: change.resource_type,
                    id: change.id,
                    json: 0..0,
                    cancel: Some(reason),
                });
                if used > *budget {
                    self.overflow();
                }
            }
            Mode::List => self.list.push(change),
            Mode::Verdict => {}
        }
    }

    /// Buffer mode: hands out the buffered changes in order.
    pub fn drain(self, mut f: impl FnMut(Change)) {
        let Mode::Buffer { arena, pending, .. } = self.mode else {
            return;
        };
        let text = arena.as_str();
        for p in pending {
            let action = match p.cancel {
                Some(reason) => Action::Cancel { reason },
                None => Action::Merge(Resource::from_json(text.get(p.json).unwrap_or("null"))),
            };
            f(Change {
                resource_type: p.resource_type,
                id: p.id,
                action,
            });
        }
    }

    /// True when this set already has a change for the resource: directory
    /// resources (providers, the payer) are then not rebuilt for every claim
    /// that names them, which is most of the mapping cost in big files.
    pub fn has(&self, resource_type: ResourceType, id: &str) -> bool {
        self.position(resource_type, id).is_some()
    }

    pub fn cancel(&mut self, id: String, reason: String) {
        self.emit(Change {
            resource_type: ResourceType::ExplanationOfBenefit,
            id,
            action: Action::Cancel { reason },
        });
    }

    /// The collected changes (list and buffer modes), folded shared
    /// resources serialised again.
    pub fn into_vec(mut self) -> Vec<Change> {
        for (at, value) in self.folded.drain() {
            if let Some(change) = self.list.get_mut(at) {
                change.action = Action::Merge(Resource::from_value(&value));
            }
        }
        self.list
    }
}
