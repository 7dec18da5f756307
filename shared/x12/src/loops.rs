//! The generic, table-driven loop recogniser and the loop tree view.
//!
//! Recognition is one pass over a transaction set's segments with a stack of
//! open loops (kept implicitly as parent links). For a segment that can open
//! a loop, the open loops are tried innermost first: the first open loop that
//! the guide's table allows as the parent of a loop started by this segment
//! wins, and every loop nested deeper is closed. That single rule gives the
//! TR3 behaviour: a second `LX` closes 2400 and its 2420/2430 children, a
//! `CLM` closes the previous claim, and `NM1*82` means 2420A inside a service
//! line but 2310B at claim level.
//!
//! `HL` is the exception: its parent comes from HL02, checked against the
//! table (a 22 must hang under a 20). Parents must still be open (on the
//! current path); anything else is reported as an out-of-order hierarchy
//! so that every loop covers one contiguous run of segments.

use std::collections::HashMap;

use crate::error::{ElementPos, ErrorKind, X12Error};
use crate::guides::{LoopDef, LoopTable, ROOT_LOOP};
use crate::segment::Segment;

/// One loop instance. Nodes are stored in document order (pre-order), so a
/// node's descendants are the nodes `index + 1 ..= last_descendant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub id: &'static str,
    pub parent: Option<usize>,
    /// First segment (the trigger), index into the set's segments.
    pub first: usize,
    /// One past the last segment of this loop or its sub-loops.
    pub end: usize,
    pub last_descendant: usize,
}

/// HL04 bookkeeping: what the HL declared and what followed.
struct HlCheck {
    segment: usize,
    declared_children: Option<bool>,
    has_children: bool,
}

/// Builds the loop tree of `segments` (ST..SE) using `table`. Assigns each
/// segment's owning loop and returns the nodes plus hierarchy errors.
pub(crate) fn recognise(
    segments: &mut [Segment<'_>],
    table: &LoopTable,
) -> (Vec<Node>, Vec<X12Error>) {
    let mut r = Recogniser {
        nodes: vec![Node {
            id: ROOT_LOOP,
            parent: None,
            first: 0,
            end: segments.len(),
            last_descendant: 0,
        }],
        current: 0,
        hl_by_id: HashMap::new(),
        hl_checks: HashMap::new(),
        errors: Vec::new(),
        table,
        structural: table.structural_ids(),
    };
    let last = segments.len().saturating_sub(1);
    for i in 0..segments.len() {
        let Some(seg) = segments.get(i).copied() else {
            break;
        };
        let owner = if i == last && seg.id() == "SE" {
            // SE belongs to the root: close every loop before it.
            r.close_until(0, i);
            0
        } else {
            r.place(&seg, i)
        };
        if let Some(s) = segments.get_mut(i) {
            s.loop_node = u32::try_from(owner).unwrap_or(0);
        }
    }
    r.close_until(0, segments.len());
    r.finish_hl_checks(segments);
    r.fill_descendants();
    (r.nodes, r.errors)
}

struct Recogniser<'t, 'a> {
    nodes: Vec<Node>,
    current: usize,
    hl_by_id: HashMap<&'a str, usize>,
    hl_checks: HashMap<usize, HlCheck>,
    errors: Vec<X12Error>,
    table: &'t LoopTable,
    /// Distinct ids that can open or close a loop; most segments are not
    /// in it and skip the table walk.
    structural: Vec<&'static str>,
}

impl<'a> Recogniser<'_, 'a> {
    /// Decides which loop owns segment `i`, opening or closing loops.
    fn place(&mut self, seg: &Segment<'a>, i: usize) -> usize {
        let id = seg.id();
        if !self.structural.contains(&id) {
            return self.current;
        }
        if let Some(closer) = self.table.closers.iter().find(|c| c.segment == id)
            && let Some(wrapper) = self.open_ancestor(|_, n| n.id == closer.loop_id)
        {
            self.close_until(wrapper, i + 1);
            if let Some(n) = self.nodes.get_mut(wrapper) {
                n.end = i + 1;
            }
            self.current = self.parent_of(wrapper).unwrap_or(0);
            return wrapper;
        }
        let opened = if id == "HL" {
            self.place_hl(seg, i)
        } else {
            self.find_parent(seg).map(|(parent, def)| (parent, def.id))
        };
        match opened {
            Some((parent, loop_id)) => self.open(parent, loop_id, i),
            None => self.current,
        }
    }

    /// Innermost open loop that the table allows as parent for `seg`.
    fn find_parent(&self, seg: &Segment<'_>) -> Option<(usize, &'static LoopDef)> {
        let id = seg.id();
        let mut at = Some(self.current);
        while let Some(n) = at {
            let parent_id = self.nodes.get(n)?.id;
            if let Some(def) = self
                .table
                .rows()
                .find(|d| d.parent == parent_id && matches(d, id, seg))
            {
                return Some((n, def));
            }
            at = self.parent_of(n);
        }
        None
    }

    /// Places an HL by its level code (HL03) and parent id (HL02).
    fn place_hl(&mut self, seg: &Segment<'a>, i: usize) -> Option<(usize, &'static str)> {
        let level = seg.element(3).unwrap_or("");
        let mut defs = self.table.rows().filter(|d| matches(d, "HL", seg));
        let Some(first) = defs.next() else {
            self.error(
                seg,
                3,
                format!("HL03 level code {level:?} is not used in this guide"),
            );
            return None;
        };
        // A level may hang under more than one parent level (the 278 patient
        // event under the subscriber or the dependent): HL02 says which.
        let named_parent = seg
            .element(2)
            .and_then(|h| self.hl_by_id.get(h))
            .and_then(|&n| self.nodes.get(n))
            .map(|n| n.id);
        let def = std::iter::once(first)
            .chain(defs)
            .find(|d| Some(d.parent) == named_parent)
            .unwrap_or(first);
        let parent = self.hl_parent(seg, def);
        let hl01 = seg.element(1);
        match hl01 {
            None => self.error(seg, 1, "HL01 hierarchical id is missing".into()),
            Some(h) if self.hl_by_id.contains_key(h) => self.error(
                seg,
                1,
                format!("HL01 id {h:?} is used twice in this transaction set"),
            ),
            Some(_) => {}
        }
        if let Some(check) = self.hl_checks.get_mut(&parent) {
            check.has_children = true;
        }
        let node = self.nodes.len();
        if let Some(h) = hl01 {
            self.hl_by_id.entry(h).or_insert(node);
        }
        let declared_children = match seg.element(4) {
            Some("1") => Some(true),
            Some("0") => Some(false),
            None => None,
            Some(other) => {
                self.error(seg, 4, format!("HL04 child code {other:?} must be 0 or 1"));
                None
            }
        };
        self.hl_checks.insert(
            node,
            HlCheck {
                segment: i,
                declared_children,
                has_children: false,
            },
        );
        Some((parent, def.id))
    }

    /// Resolves HL02 to an open loop of the level the table expects, falling
    /// back (with an error) to the nearest open loop of that level.
    fn hl_parent(&mut self, seg: &Segment<'a>, def: &LoopDef) -> usize {
        let fallback = self.open_ancestor(|_, n| n.id == def.parent).unwrap_or(0);
        let Some(hl02) = seg.element(2) else {
            if def.parent != ROOT_LOOP {
                self.error(
                    seg,
                    2,
                    format!(
                        "HL02 parent id is missing; loop {} needs a {} parent",
                        def.id, def.parent
                    ),
                );
            }
            return fallback;
        };
        if def.parent == ROOT_LOOP {
            self.error(
                seg,
                2,
                format!("HL02 must be empty for a top-level loop {}", def.id),
            );
            return fallback;
        }
        let Some(&target) = self.hl_by_id.get(hl02) else {
            self.error(
                seg,
                2,
                format!("HL02 parent {hl02:?} is not an earlier HL01 in this set"),
            );
            return fallback;
        };
        let target_id = self.nodes.get(target).map_or("", |n| n.id);
        if target_id != def.parent {
            self.error(
                seg,
                2,
                format!(
                    "HL02 parent {hl02:?} is loop {target_id}, but loop {} needs a {} parent",
                    def.id, def.parent
                ),
            );
            return fallback;
        }
        if self.open_ancestor(|i, _| i == target).is_none() {
            self.error(
                seg,
                2,
                format!(
                    "HL02 parent {hl02:?} was already closed by a later HL (hierarchy out of order)"
                ),
            );
            return fallback;
        }
        target
    }

    /// Opens loop `id` under `parent` at segment `i`, closing deeper loops.
    fn open(&mut self, parent: usize, id: &'static str, i: usize) -> usize {
        self.close_until(parent, i);
        let node = self.nodes.len();
        self.nodes.push(Node {
            id,
            parent: Some(parent),
            first: i,
            end: i + 1,
            last_descendant: node,
        });
        self.current = node;
        node
    }

    /// Closes every open loop below `keep` at segment index `end`.
    fn close_until(&mut self, keep: usize, end: usize) {
        let mut at = self.current;
        while at != keep {
            let Some(n) = self.nodes.get_mut(at) else {
                break;
            };
            n.end = end;
            match n.parent {
                Some(p) => at = p,
                None => break,
            }
        }
        self.current = keep;
    }

    fn open_ancestor(&self, pred: impl Fn(usize, &Node) -> bool) -> Option<usize> {
        let mut at = Some(self.current);
        while let Some(n) = at {
            if pred(n, self.nodes.get(n)?) {
                return Some(n);
            }
            at = self.parent_of(n);
        }
        None
    }

    fn parent_of(&self, n: usize) -> Option<usize> {
        self.nodes.get(n).and_then(|n| n.parent)
    }

    fn error(&mut self, seg: &Segment<'_>, element: usize, reason: String) {
        let mut e = seg.error_at(ErrorKind::InvalidHierarchy, ElementPos::at(element), reason);
        e.position.loop_id = self.nodes.get(self.current).map(|n| n.id);
        self.errors.push(e);
    }

    /// HL04 says whether children follow; check it against what followed.
    fn finish_hl_checks(&mut self, segments: &[Segment<'_>]) {
        let mut checks: Vec<_> = self.hl_checks.drain().collect();
        checks.sort_by_key(|(_, c)| c.segment);
        for (node, c) in checks {
            let Some(seg) = segments.get(c.segment) else {
                continue;
            };
            let reason = match (c.declared_children, c.has_children) {
                (Some(true), false) => {
                    "HL04 says child HL segments follow (1) but none names this HL as parent"
                }
                (Some(false), true) => {
                    "HL04 says no child HL follows (0) but a later HL names this HL as parent"
                }
                _ => continue,
            };
            let mut e = seg.error_at(ErrorKind::InvalidHierarchy, ElementPos::at(4), reason);
            e.position.loop_id = self.nodes.get(node).map(|n| n.id);
            self.errors.push(e);
        }
    }

    fn fill_descendants(&mut self) {
        for n in (1..self.nodes.len()).rev() {
            let (parent, last) = match self.nodes.get(n) {
                Some(node) => (node.parent, node.last_descendant),
                None => continue,
            };
            if let Some(p) = parent.and_then(|p| self.nodes.get_mut(p)) {
                p.last_descendant = p.last_descendant.max(last);
            }
        }
    }
}

/// True when `seg` (whose id is `id`, computed once by the caller) is the
/// trigger described by `def`.
fn matches(def: &LoopDef, id: &str, seg: &Segment<'_>) -> bool {
    id == def.segment
        && match def.qualifier {
            None => true,
            Some((element, values)) => seg.element(element).is_some_and(|v| values.contains(&v)),
        }
}

/// A loop instance inside a transaction set: its own segments, its
/// sub-loops, and its parent. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Loop<'s, 'a> {
    segments: &'s [Segment<'a>],
    nodes: &'s [Node],
    index: usize,
}

impl<'s, 'a> Loop<'s, 'a> {
    pub(crate) fn new(segments: &'s [Segment<'a>], nodes: &'s [Node], index: usize) -> Self {
        Self {
            segments,
            nodes,
            index,
        }
    }

    fn node(&self) -> Option<&'s Node> {
        self.nodes.get(self.index)
    }

    /// The loop id from the TR3 (`2300`, `2010BA`, `HEADER` for the root).
    pub fn id(&self) -> &'static str {
        self.node().map_or(ROOT_LOOP, |n| n.id)
    }

    /// The segment that opened this loop (`CLM` for 2300, `HL` for 2000B).
    pub fn trigger(&self) -> Option<&'s Segment<'a>> {
        self.node().and_then(|n| self.segments.get(n.first))
    }

    /// Every segment of this loop and its sub-loops, in order.
    pub fn all_segments(&self) -> &'s [Segment<'a>] {
        self.node()
            .and_then(|n| self.segments.get(n.first..n.end))
            .unwrap_or_default()
    }

    /// The loop's own segments (not those of sub-loops), in order.
    pub fn segments(&self) -> impl Iterator<Item = &'s Segment<'a>> + 's {
        let me = self.index;
        let nodes = self.nodes;
        let segments = self.segments;
        let (mut i, end) = self.node().map_or((0, 0), |n| (n.first, n.end));
        std::iter::from_fn(move || {
            while i < end {
                let seg = segments.get(i)?;
                let owner = seg.loop_node as usize;
                if owner == me {
                    i += 1;
                    return Some(seg);
                }
                // A sub-loop starts here: jump over it.
                i = nodes.get(owner).map_or(i + 1, |n| n.end.max(i + 1));
            }
            None
        })
    }

    /// The first own segment with this id.
    pub fn segment(&self, id: &str) -> Option<&'s Segment<'a>> {
        self.segments().find(|s| s.id() == id)
    }

    /// The first own segment with this id and element 1 (`DTP*472`,
    /// `REF*F8`, `NM1*85`).
    pub fn segment_with(&self, id: &str, qualifier: &str) -> Option<&'s Segment<'a>> {
        self.segments().find(|s| s.is(id, qualifier))
    }

    /// All own segments with this id (`HI`, `CAS`, `REF`).
    pub fn segments_named<'q>(&self, id: &'q str) -> impl Iterator<Item = &'s Segment<'a>> + 'q
    where
        's: 'q,
    {
        self.segments().filter(move |s| s.id() == id)
    }

    /// Direct sub-loops, in document order.
    pub fn children(&self) -> impl Iterator<Item = Loop<'s, 'a>> + 's {
        let me = self.index;
        let this = *self;
        let last = self.node().map_or(0, |n| n.last_descendant);
        let mut next = me + 1;
        std::iter::from_fn(move || {
            while next <= last {
                let n = this.nodes.get(next)?;
                let at = next;
                next = n.last_descendant.max(next) + 1;
                if n.parent == Some(me) {
                    return Some(Loop::new(this.segments, this.nodes, at));
                }
            }
            None
        })
    }

    /// Direct sub-loops with this id (`claim.children_named("2400")`).
    pub fn children_named<'q>(&self, id: &'q str) -> impl Iterator<Item = Loop<'s, 'a>> + 'q
    where
        's: 'q,
    {
        self.children().filter(move |l| l.id() == id)
    }

    /// The first direct sub-loop with this id.
    pub fn child(&self, id: &str) -> Option<Loop<'s, 'a>> {
        self.children().find(|l| l.id() == id)
    }

    /// All sub-loops at any depth, in document order.
    pub fn descendants(&self) -> impl Iterator<Item = Loop<'s, 'a>> + 's {
        let this = *self;
        let last = self.node().map_or(0, |n| n.last_descendant);
        (self.index + 1..=last).map(move |i| Loop::new(this.segments, this.nodes, i))
    }

    /// All sub-loops at any depth with this id (`root.descendants_named("2300")`).
    pub fn descendants_named<'q>(&self, id: &'q str) -> impl Iterator<Item = Loop<'s, 'a>> + 'q
    where
        's: 'q,
    {
        self.descendants().filter(move |l| l.id() == id)
    }

    /// The enclosing loop (`None` for the root).
    pub fn parent(&self) -> Option<Loop<'s, 'a>> {
        self.node()
            .and_then(|n| n.parent)
            .map(|p| Loop::new(self.segments, self.nodes, p))
    }

    /// The nearest enclosing loop with this id (`claim.ancestor("2000B")`).
    pub fn ancestor(&self, id: &str) -> Option<Loop<'s, 'a>> {
        let mut at = self.parent();
        while let Some(l) = at {
            if l.id() == id {
                return Some(l);
            }
            at = l.parent();
        }
        None
    }
}
