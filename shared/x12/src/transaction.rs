//! One transaction set (ST..SE): its own syntax checks, guide identification
//! and loop tree. Acceptance is per set, as the 999 defines it, so a set is
//! either a [`TransactionSet`] with no errors or a [`RejectedSet`] listing
//! every error found in it.

use std::fmt;
use std::sync::Arc;

use crate::envelope::{GroupHeader, InterchangeHeader, RawSegment, SetContext};
use crate::error::{ElementPos, ErrorKind, Position, X12Error, X12Warning};
use crate::guides::Guide;
use crate::loops::{Loop, Node, recognise};
use crate::segment::Segment;

/// Resource caps that keep memory bounded on hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest transaction set in bytes (default 64 MiB). A larger set is
    /// rejected without being buffered.
    pub max_set_bytes: usize,
    /// Largest single element in bytes (default 1 MiB).
    pub max_element_bytes: usize,
    /// Errors kept per set; later ones are dropped (default 100).
    pub max_errors_per_set: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_set_bytes: 64 * 1024 * 1024,
            max_element_bytes: 1024 * 1024,
            max_errors_per_set: 100,
        }
    }
}

/// The outcome for one transaction set.
pub type SetResult<'a> = Result<TransactionSet<'a>, RejectedSet>;

/// A transaction set that passed every check: segments borrow from the
/// input and are grouped into the guide's loops.
#[derive(Debug, Clone)]
pub struct TransactionSet<'a> {
    interchange: Arc<InterchangeHeader>,
    group: Arc<GroupHeader>,
    guide: Guide,
    warnings: Vec<X12Warning>,
    segments: Vec<Segment<'a>>,
    nodes: Vec<Node>,
}

impl<'a> TransactionSet<'a> {
    /// The implementation guide (837P/I/D, 835, 834 and exact version).
    pub fn guide(&self) -> Guide {
        self.guide
    }

    /// What was accepted but should be fixed by the sender (e.g. a base
    /// guide id read as its errata).
    pub fn warnings(&self) -> &[X12Warning] {
        &self.warnings
    }

    /// The enclosing ISA header.
    pub fn interchange(&self) -> &InterchangeHeader {
        &self.interchange
    }

    /// The enclosing GS header.
    pub fn group(&self) -> &GroupHeader {
        &self.group
    }

    /// ST01, e.g. `837`.
    pub fn transaction_id(&self) -> &'a str {
        self.st_element(1).unwrap_or("")
    }

    /// ST02, the set control number.
    pub fn control_number(&self) -> &'a str {
        self.st_element(2).unwrap_or("")
    }

    /// ST03 when sent, else GS08.
    pub fn version(&self) -> &str {
        self.st_element(3).unwrap_or(&self.group.version)
    }

    fn st_element(&self, n: usize) -> Option<&'a str> {
        self.segments.first().and_then(|s| s.element(n))
    }

    /// Every segment ST..SE in order.
    pub fn segments(&self) -> &[Segment<'a>] {
        &self.segments
    }

    /// The root loop (`HEADER`): ST, the header segments, SE, and every
    /// top-level loop as children.
    pub fn root(&self) -> Loop<'_, 'a> {
        Loop::new(&self.segments, &self.nodes, 0)
    }

    /// Every loop with this id anywhere in the set, in document order
    /// (`set.loops("2300")` iterates all claims).
    pub fn loops<'s>(&'s self, id: &'s str) -> impl Iterator<Item = Loop<'s, 'a>> + 's {
        let segments = &self.segments;
        let nodes = &self.nodes;
        nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.id == id)
            .map(move |(i, _)| Loop::new(segments, nodes, i))
    }

    /// The loop that owns this segment.
    pub fn loop_of(&self, segment: &Segment<'a>) -> Loop<'_, 'a> {
        Loop::new(&self.segments, &self.nodes, segment.loop_node as usize)
    }
}

/// A transaction set that failed: its identity plus all its errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSet {
    /// ST01 (may be empty if unreadable).
    pub transaction_id: String,
    /// ST02.
    pub control_number: String,
    /// ST03 when sent.
    pub version: Option<String>,
    /// The enclosing ISA header.
    pub interchange: Arc<InterchangeHeader>,
    /// The enclosing GS header.
    pub group: Arc<GroupHeader>,
    /// Every error found, in segment order (capped by [`Limits`]).
    pub errors: Vec<X12Error>,
}

impl fmt::Display for RejectedSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transaction set {} control {} rejected with {} error(s)",
            self.transaction_id,
            self.control_number,
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RejectedSet {}

/// Collects errors up to the cap.
struct Errors {
    list: Vec<X12Error>,
    cap: usize,
}

impl Errors {
    fn push(&mut self, e: X12Error) {
        if self.list.len() < self.cap {
            self.list.push(e);
        }
    }
}

/// Checks and structures one set. `truncated` means no SE was found.
pub(crate) fn parse_set<'a>(
    raws: &[RawSegment<'a>],
    ctx: SetContext,
    truncated: bool,
    limits: &Limits,
) -> SetResult<'a> {
    let mut errors = Errors {
        list: ctx.pre_errors,
        cap: limits.max_errors_per_set,
    };
    let too_large = errors.list.iter().any(|e| e.kind == ErrorKind::SetTooLarge);
    let mut segments: Vec<Segment<'a>> = Vec::with_capacity(raws.len());
    if !too_large {
        for (i, raw) in raws.iter().enumerate() {
            segments.push(to_segment(raw, i + 1, limits, &mut errors));
        }
        check_trailer(&segments, ctx.skipped_segments, truncated, &mut errors);
    }
    let st = segments.first();
    let st01 = st.and_then(|s| s.element(1)).unwrap_or("");
    let st02 = st.and_then(|s| s.element(2)).unwrap_or("");
    let st03 = st.and_then(|s| s.element(3));
    let mut warnings = Vec::new();
    let guide = match Guide::identify(
        st01,
        st03,
        Some(ctx.group.version.as_str()).filter(|v| !v.is_empty()),
    ) {
        Ok(identified) => {
            if let Some(s) = st {
                let mut position = s.position();
                position.element = st03.map(|_| ElementPos::at(3));
                warnings.extend(identified.warnings.into_iter().map(|message| X12Warning {
                    position: position.clone(),
                    message,
                }));
            }
            Some(identified.guide)
        }
        Err(reason) => {
            if let Some(s) = st {
                errors.push(s.error_at(
                    ErrorKind::UnsupportedTransaction,
                    ElementPos::at(1),
                    reason,
                ));
            }
            None
        }
    };
    let nodes = match guide {
        Some(g) if !too_large => {
            let (nodes, loop_errors) = recognise(&mut segments, &g.table());
            loop_errors.into_iter().for_each(|e| errors.push(e));
            nodes
        }
        _ => Vec::new(),
    };
    match guide {
        Some(guide) if errors.list.is_empty() => Ok(TransactionSet {
            interchange: ctx.interchange,
            group: ctx.group,
            guide,
            warnings,
            segments,
            nodes,
        }),
        _ => {
            let mut list = errors.list;
            list.sort_by_key(|e| e.position.segment_in_file);
            Err(RejectedSet {
                transaction_id: st01.to_string(),
                control_number: st02.to_string(),
                version: st03.map(str::to_string),
                interchange: ctx.interchange,
                group: ctx.group,
                errors: list,
            })
        }
    }
}

/// Validates one segment's bytes (UTF-8, id syntax, element sizes) and
/// wraps it. Invalid bytes keep the segment (truncated to its valid prefix)
/// so later checks still see correct positions.
fn to_segment<'a>(
    raw: &RawSegment<'a>,
    index_in_set: usize,
    limits: &Limits,
    errors: &mut Errors,
) -> Segment<'a> {
    let position = Position {
        segment_in_set: Some(index_in_set),
        segment_in_file: raw.index_in_file,
        byte_offset: raw.byte_offset,
        segment_id: String::from_utf8_lossy(raw.id()).into_owned(),
        element: None,
        loop_id: None,
    };
    let text = match std::str::from_utf8(raw.bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.valid_up_to();
            let prefix = raw.bytes.get(..valid).unwrap_or_default();
            let element = memchr::memchr_iter(raw.delims.element, prefix).count();
            errors.push(
                X12Error::new(
                    ErrorKind::InvalidCharacter,
                    position.clone(),
                    format!(
                        "byte 0x{:02X} at offset {valid} of the segment is not valid UTF-8 text",
                        raw.bytes.get(valid).copied().unwrap_or(0)
                    ),
                )
                .at_element(ElementPos::at(element)),
            );
            std::str::from_utf8(prefix).unwrap_or("")
        }
    };
    let mut seg = Segment::new(text, raw.delims);
    seg.index_in_set = index_in_set;
    seg.index_in_file = raw.index_in_file;
    seg.byte_offset = raw.byte_offset;
    if !valid_segment_id(seg.id()) {
        errors.push(X12Error::new(
            ErrorKind::UnrecognizedSegment,
            position.clone(),
            format!(
                "{:?} is not a segment id (2-3 upper-case letters or digits)",
                truncate(seg.id(), 20)
            ),
        ));
    }
    if text.len() > limits.max_element_bytes {
        check_element_sizes(&seg, limits, errors);
    }
    seg
}

fn check_element_sizes(seg: &Segment<'_>, limits: &Limits, errors: &mut Errors) {
    for (i, value) in seg.elements().enumerate() {
        if value.len() > limits.max_element_bytes {
            errors.push(seg.error_at(
                ErrorKind::ElementTooLong,
                ElementPos::at(i + 1),
                format!(
                    "element is {} bytes, above the {} byte limit",
                    value.len(),
                    limits.max_element_bytes
                ),
            ));
        }
    }
}

fn valid_segment_id(id: &str) -> bool {
    let b = id.as_bytes();
    (2..=3).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_uppercase)
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// ST02/SE02 and SE01 checks.
fn check_trailer(segments: &[Segment<'_>], skipped: usize, truncated: bool, errors: &mut Errors) {
    let Some(st) = segments.first() else {
        return;
    };
    let st02 = st.element(2).unwrap_or("");
    if st.element(1).is_none() {
        errors.push(st.error_at(
            ErrorKind::MissingElement,
            ElementPos::at(1),
            "ST01 transaction set identifier is missing",
        ));
    }
    if !(4..=9).contains(&st02.len()) {
        errors.push(st.error_at(
            ErrorKind::InvalidSetControlNumber,
            ElementPos::at(2),
            format!("ST02 control number {st02:?} must be 4 to 9 characters"),
        ));
    }
    let Some(last) = segments.last() else {
        return;
    };
    if truncated || last.id() != "SE" {
        let mut e = last.error_at(
            ErrorKind::SetTrailerMissing,
            ElementPos::default(),
            format!("transaction set {st02:?} has no SE trailer (truncated or interrupted by an envelope segment)"),
        );
        e.position.element = None;
        errors.push(e);
        return;
    }
    let count = last.element(1).unwrap_or("");
    let actual = segments.len() + skipped;
    if count.parse::<usize>().ok() != Some(actual) {
        errors.push(last.error_at(
            ErrorKind::SegmentCountMismatch,
            ElementPos::at(1),
            format!(
                "SE01 says {count:?} segments but the set has {} (ST to SE inclusive)",
                segments.len()
            ),
        ));
    }
    let se02 = last.element(2).unwrap_or("");
    if se02 != st02 {
        errors.push(last.error_at(
            ErrorKind::SetControlMismatch,
            ElementPos::at(2),
            format!("SE02 {se02:?} does not match ST02 {st02:?}"),
        ));
    }
}
