//! Interchange (ISA/IEA) and functional group (GS/GE) headers and the
//! envelope state machine shared by the in-memory and streaming readers.
//!
//! The tracker sees envelope segments only; transaction-set contents are
//! checked by [`crate::transaction`]. It records the control numbers and
//! counts that can be checked only across sets (GE01, IEA01, duplicate ST02)
//! and reports what is missing when input ends early.

use std::collections::HashSet;
use std::sync::Arc;

use crate::delimiters::Delimiters;
use crate::error::{AckLevel, ElementPos, ErrorKind, Position, X12Error};
use crate::segment::raw_field;

/// The values of one ISA header, owned so that every transaction set can
/// keep a cheap `Arc` to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterchangeHeader {
    /// ISA05.
    pub sender_qualifier: String,
    /// ISA06, trailing padding removed.
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08, trailing padding removed.
    pub receiver_id: String,
    /// ISA09 (YYMMDD).
    pub date: String,
    /// ISA10 (HHMM).
    pub time: String,
    /// ISA12, `00501` for 5010.
    pub version: String,
    /// ISA13.
    pub control_number: String,
    /// ISA14: `1` when a TA1 is requested.
    pub ack_requested: String,
    /// ISA15: `P` production, `T` test.
    pub usage: String,
    /// Delimiters of this interchange.
    pub delimiters: Delimiters,
}

/// The values of one GS header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupHeader {
    /// GS01 functional id: `HC` 837, `HP` 835, `BE` 834, `HI` 278.
    pub functional_id: String,
    /// GS02 application sender code.
    pub sender: String,
    /// GS03 application receiver code.
    pub receiver: String,
    /// GS04 date (CCYYMMDD).
    pub date: String,
    /// GS05 time.
    pub time: String,
    /// GS06 group control number.
    pub control_number: String,
    /// GS07 responsible agency (`X`).
    pub agency: String,
    /// GS08 version/release/industry id, e.g. `005010X222A1`.
    pub version: String,
}

/// Envelope-level outcome of a whole input: errors that reject a group or
/// the whole interchange, plus counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvelopeReport {
    /// Interchange (TA1) and group (AK9) errors, in input order.
    pub errors: Vec<X12Error>,
    /// Number of ISA segments seen.
    pub interchanges: usize,
    /// Number of GS segments seen.
    pub groups: usize,
    /// Number of ST segments seen.
    pub sets: usize,
}

impl EnvelopeReport {
    /// True when an interchange-level error rejects every set in the input.
    pub fn rejects_everything(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.ack_code().level == AckLevel::Interchange)
    }

    /// True when there is no envelope error at all.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A segment as seen by the envelope tracker: raw bytes plus where it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawSegment<'a> {
    pub bytes: &'a [u8],
    pub delims: Delimiters,
    pub index_in_file: usize,
    pub byte_offset: u64,
}

impl RawSegment<'_> {
    pub fn id(&self) -> &[u8] {
        raw_field(self.bytes, self.delims.element, 0).unwrap_or_default()
    }

    /// Element `n` as owned text; envelope values are short ASCII.
    pub fn text(&self, n: usize) -> String {
        raw_field(self.bytes, self.delims.element, n)
            .map(|b| String::from_utf8_lossy(b).trim_end().to_string())
            .unwrap_or_default()
    }

    pub fn position(&self) -> Position {
        Position {
            segment_in_set: None,
            segment_in_file: self.index_in_file,
            byte_offset: self.byte_offset,
            segment_id: String::from_utf8_lossy(self.id()).into_owned(),
            element: None,
            loop_id: None,
        }
    }

    pub fn error(&self, kind: ErrorKind, element: Option<usize>, reason: String) -> X12Error {
        let e = X12Error::new(kind, self.position(), reason);
        match element {
            Some(n) => e.at_element(ElementPos::at(n)),
            None => e,
        }
    }
}

/// The role a segment plays in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Isa,
    Iea,
    Gs,
    Ge,
    St,
    Se,
    Body,
}

impl Role {
    pub fn of(id: &[u8]) -> Self {
        match id {
            b"ISA" => Self::Isa,
            b"IEA" => Self::Iea,
            b"GS" => Self::Gs,
            b"GE" => Self::Ge,
            b"ST" => Self::St,
            b"SE" => Self::Se,
            _ => Self::Body,
        }
    }

    /// Envelope segments that end an unterminated transaction set.
    pub fn interrupts_set(self) -> bool {
        matches!(self, Self::Isa | Self::Iea | Self::Gs | Self::Ge | Self::St)
    }
}

/// What a transaction set inherits from its envelope.
#[derive(Debug, Clone)]
pub(crate) struct SetContext {
    pub interchange: Arc<InterchangeHeader>,
    pub group: Arc<GroupHeader>,
    /// Errors known before the set's own checks (duplicate ST02...).
    pub pre_errors: Vec<X12Error>,
    /// Segments counted but not buffered (skipped after a cap error), so
    /// that SE01 is still checked against the true count.
    pub skipped_segments: usize,
}

struct OpenInterchange {
    header: Arc<InterchangeHeader>,
    groups: usize,
    group_controls: HashSet<String>,
}

struct OpenGroup {
    header: Arc<GroupHeader>,
    sets: usize,
    set_controls: HashSet<String>,
}

/// The envelope state machine.
#[derive(Default)]
pub(crate) struct Envelope {
    interchange: Option<OpenInterchange>,
    group: Option<OpenGroup>,
    report: EnvelopeReport,
    /// Set once the first IEA has closed an interchange, so that stray data
    /// after it is reported rather than silently absorbed.
    closed_any: bool,
}

impl Envelope {
    pub fn report(&self) -> &EnvelopeReport {
        &self.report
    }

    pub fn into_report(self) -> EnvelopeReport {
        self.report
    }

    fn push(&mut self, e: X12Error) {
        self.report.errors.push(e);
    }

    pub fn isa(&mut self, seg: &RawSegment<'_>) {
        self.close_open(seg, "a new ISA");
        self.report.interchanges += 1;
        let header = InterchangeHeader {
            sender_qualifier: seg.text(5),
            sender_id: seg.text(6),
            receiver_qualifier: seg.text(7),
            receiver_id: seg.text(8),
            date: seg.text(9),
            time: seg.text(10),
            version: seg.text(12),
            control_number: seg.text(13),
            ack_requested: seg.text(14),
            usage: seg.text(15),
            delimiters: seg.delims,
        };
        if header.version != "00501" {
            self.push(seg.error(
                ErrorKind::UnsupportedInterchangeVersion,
                Some(12),
                format!(
                    "ISA12 interchange version {:?} is not supported; only 00501 (5010) is",
                    header.version
                ),
            ));
        }
        self.interchange = Some(OpenInterchange {
            header: Arc::new(header),
            groups: 0,
            group_controls: HashSet::new(),
        });
    }

    pub fn gs(&mut self, seg: &RawSegment<'_>) {
        if let Some(g) = self.group.take() {
            self.missing_ge(seg, &g);
        }
        self.report.groups += 1;
        let header = GroupHeader {
            functional_id: seg.text(1),
            sender: seg.text(2),
            receiver: seg.text(3),
            date: seg.text(4),
            time: seg.text(5),
            control_number: seg.text(6),
            agency: seg.text(7),
            version: seg.text(8),
        };
        match self.interchange.as_mut() {
            None => {
                let e = seg.error(
                    ErrorKind::InvalidEnvelopeStructure,
                    None,
                    "GS functional group outside an ISA interchange".into(),
                );
                self.push(e);
            }
            Some(i) => {
                i.groups += 1;
                if !i.group_controls.insert(header.control_number.clone()) {
                    let e = seg.error(
                        ErrorKind::DuplicateGroupControl,
                        Some(6),
                        format!(
                            "GS06 group control number {:?} is used twice in interchange {:?}",
                            header.control_number, i.header.control_number
                        ),
                    );
                    self.push(e);
                }
            }
        }
        self.group = Some(OpenGroup {
            header: Arc::new(header),
            sets: 0,
            set_controls: HashSet::new(),
        });
    }

    /// Registers an ST and returns the envelope context for the set.
    pub fn st(&mut self, seg: &RawSegment<'_>) -> SetContext {
        self.report.sets += 1;
        let mut pre_errors = Vec::new();
        let interchange = self
            .interchange
            .as_ref()
            .map(|i| i.header.clone())
            .unwrap_or_default();
        let control = seg.text(2);
        let group = match self.group.as_mut() {
            Some(g) => {
                g.sets += 1;
                if !control.is_empty() && !g.set_controls.insert(control.clone()) {
                    pre_errors.push(seg.error(
                        ErrorKind::DuplicateSetControl,
                        Some(2),
                        format!(
                            "ST02 control number {control:?} is used twice in functional group {:?}",
                            g.header.control_number
                        ),
                    ));
                }
                g.header.clone()
            }
            None => {
                let e = seg.error(
                    ErrorKind::InvalidEnvelopeStructure,
                    None,
                    "ST transaction set outside a GS functional group".into(),
                );
                pre_errors.push(e.clone());
                self.push(e);
                Arc::default()
            }
        };
        SetContext {
            interchange,
            group,
            pre_errors,
            skipped_segments: 0,
        }
    }

    pub fn ge(&mut self, seg: &RawSegment<'_>) {
        let Some(g) = self.group.take() else {
            let e = seg.error(
                ErrorKind::InvalidEnvelopeStructure,
                None,
                "GE without a matching GS".into(),
            );
            self.push(e);
            return;
        };
        let count = seg.text(1);
        if count.parse::<usize>().ok() != Some(g.sets) {
            let e = seg.error(
                ErrorKind::SetCountMismatch,
                Some(1),
                format!(
                    "GE01 says {count:?} transaction sets but group {:?} contains {}",
                    g.header.control_number, g.sets
                ),
            );
            self.push(e);
        }
        let control = seg.text(2);
        if control != g.header.control_number {
            let e = seg.error(
                ErrorKind::GroupControlMismatch,
                Some(2),
                format!(
                    "GE02 {control:?} does not match GS06 {:?}",
                    g.header.control_number
                ),
            );
            self.push(e);
        }
    }

    pub fn iea(&mut self, seg: &RawSegment<'_>) {
        if let Some(g) = self.group.take() {
            self.missing_ge(seg, &g);
        }
        let Some(i) = self.interchange.take() else {
            let e = seg.error(
                ErrorKind::InvalidEnvelopeStructure,
                None,
                "IEA without a matching ISA".into(),
            );
            self.push(e);
            return;
        };
        self.closed_any = true;
        let count = seg.text(1);
        if count.parse::<usize>().ok() != Some(i.groups) {
            let e = seg.error(
                ErrorKind::GroupCountMismatch,
                Some(1),
                format!(
                    "IEA01 says {count:?} functional groups but interchange {:?} contains {}",
                    i.header.control_number, i.groups
                ),
            );
            self.push(e);
        }
        let control = seg.text(2);
        if control != i.header.control_number {
            let e = seg.error(
                ErrorKind::InterchangeControlMismatch,
                Some(2),
                format!(
                    "IEA02 {control:?} does not match ISA13 {:?}",
                    i.header.control_number
                ),
            );
            self.push(e);
        }
    }

    /// A segment outside any transaction set that is not an envelope segment.
    pub fn stray(&mut self, seg: &RawSegment<'_>) {
        let id = String::from_utf8_lossy(seg.id()).into_owned();
        let reason = if id.len() > 3 {
            let shown: String = id.chars().take(24).collect();
            format!(
                "{shown:?} is not a segment id: the element separator {:?} from the ISA is not used (wrong or mixed delimiters?)",
                char::from(seg.delims.element)
            )
        } else if self.interchange.is_none() && self.closed_any {
            format!("segment {id:?} after the IEA that closed the interchange")
        } else {
            format!("segment {id:?} outside a transaction set (no open ST)")
        };
        let e = seg.error(ErrorKind::InvalidEnvelopeStructure, None, reason);
        self.push(e);
    }

    /// Input ended: report open groups and interchanges.
    pub fn finish(&mut self, segment_in_file: usize, byte_offset: u64) {
        let pos = Position {
            segment_in_file,
            byte_offset,
            ..Position::default()
        };
        if let Some(g) = self.group.take() {
            let e = X12Error::new(
                ErrorKind::GroupTrailerMissing,
                pos.clone(),
                format!(
                    "input ended before GE closed functional group {:?}",
                    g.header.control_number
                ),
            );
            self.push(e);
        }
        if let Some(i) = self.interchange.take() {
            let e = X12Error::new(
                ErrorKind::PrematureEnd,
                pos,
                format!(
                    "input ended before IEA closed interchange {:?} (truncated file?)",
                    i.header.control_number
                ),
            );
            self.push(e);
        }
    }

    /// Records a fatal error that stops reading (bad later ISA, I/O).
    pub fn fatal(&mut self, e: X12Error) {
        self.push(e);
    }

    fn close_open(&mut self, seg: &RawSegment<'_>, what: &str) {
        if let Some(g) = self.group.take() {
            self.missing_ge(seg, &g);
        }
        if let Some(i) = self.interchange.take() {
            let e = seg.error(
                ErrorKind::PrematureEnd,
                None,
                format!(
                    "{what} started before IEA closed interchange {:?}",
                    i.header.control_number
                ),
            );
            self.push(e);
        }
    }

    fn missing_ge(&mut self, seg: &RawSegment<'_>, g: &OpenGroup) {
        let id = String::from_utf8_lossy(seg.id()).into_owned();
        let e = seg.error(
            ErrorKind::GroupTrailerMissing,
            None,
            format!(
                "{id} reached before GE closed functional group {:?}",
                g.header.control_number
            ),
        );
        self.push(e);
    }
}
