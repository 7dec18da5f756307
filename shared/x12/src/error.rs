//! Typed errors that carry everything a 999 (IK3/IK4/IK5/AK9) or TA1 needs.
//!
//! Acceptance in X12 is layered: an interchange error (TA1) rejects the whole
//! file, a group error (AK9) rejects a functional group, and a transaction-set
//! error (IK5, with IK3 segment and IK4 element detail) rejects only that set.
//! Every [`X12Error`] therefore says at which layer it applies ([`AckLevel`]),
//! which code the acknowledgement should carry ([`AckCode`]) and where it
//! happened ([`Position`]).

use std::fmt;

/// Which acknowledgement segment reports an error, and therefore how much of
/// the input it rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckLevel {
    /// TA1 (TA105 note code): the whole interchange is rejected.
    Interchange,
    /// 999 AK9 (AK905): the functional group is rejected.
    Group,
    /// 999 IK5 (IK502): the transaction set is rejected.
    TransactionSet,
    /// 999 IK3 (IK304): a segment error inside a set.
    Segment,
    /// 999 IK4 (IK403): an element error inside a set.
    Element,
}

impl AckLevel {
    /// True when an error at this level rejects only one transaction set.
    pub fn is_set_level(self) -> bool {
        matches!(self, Self::TransactionSet | Self::Segment | Self::Element)
    }
}

/// An acknowledgement code: the level (which segment/element carries it) and
/// the code value defined by X12 for that element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckCode {
    /// Which acknowledgement element carries the code.
    pub level: AckLevel,
    /// The code value, e.g. `"4"` for IK502 "number of included segments does
    /// not match actual count" or `"001"` for TA105.
    pub code: &'static str,
}

impl fmt::Display for AckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.level {
            AckLevel::Interchange => "TA105",
            AckLevel::Group => "AK905",
            AckLevel::TransactionSet => "IK502",
            AckLevel::Segment => "IK304",
            AckLevel::Element => "IK403",
        };
        write!(f, "{name}={}", self.code)
    }
}

/// What went wrong. Each kind maps to exactly one acknowledgement code so a
/// 999/TA1 writer does not have to second-guess the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    // ---- interchange (TA1) ----
    /// The bytes are not X12 text (no `ISA`, binary, UTF-16, another format).
    NotX12,
    /// The ISA segment is shorter than its fixed 106 bytes or not fixed width.
    InvalidIsa,
    /// The segment terminator is alphanumeric or otherwise unusable.
    InvalidSegmentTerminator,
    /// The element separator is unusable (alphanumeric, whitespace, non-ASCII).
    InvalidElementSeparator,
    /// The component separator is unusable.
    InvalidComponentSeparator,
    /// One byte is used for two delimiter roles.
    AmbiguousDelimiters,
    /// ISA12 is not `00501`.
    UnsupportedInterchangeVersion,
    /// ISA13 differs from IEA02.
    InterchangeControlMismatch,
    /// IEA01 differs from the number of GS groups.
    GroupCountMismatch,
    /// The input ended before IEA.
    PrematureEnd,
    /// A segment appears where the envelope does not allow it (GS outside an
    /// ISA, ST outside a GS, data after IEA...).
    InvalidEnvelopeStructure,
    /// Reading the underlying stream failed.
    Io,
    // ---- functional group (AK9) ----
    /// The GS has no GE.
    GroupTrailerMissing,
    /// GS06 differs from GE02.
    GroupControlMismatch,
    /// GE01 differs from the number of ST sets.
    SetCountMismatch,
    /// GS06 repeats within one interchange.
    DuplicateGroupControl,
    // ---- transaction set (IK5) ----
    /// ST01/version is not one of the supported implementation guides.
    UnsupportedTransaction,
    /// The set has no SE before the next envelope segment or end of input.
    SetTrailerMissing,
    /// ST02 differs from SE02.
    SetControlMismatch,
    /// SE01 differs from the number of segments ST..SE.
    SegmentCountMismatch,
    /// ST02 is missing or malformed.
    InvalidSetControlNumber,
    /// ST02 repeats within one functional group.
    DuplicateSetControl,
    /// The set is larger than the configured byte cap.
    SetTooLarge,
    // ---- segment (IK3) ----
    /// The segment id is not 2–3 upper-case letters/digits.
    UnrecognizedSegment,
    /// A segment that cannot appear here (e.g. a second ST inside a set).
    UnexpectedSegment,
    /// A segment the guide requires here is absent (a 278 response's HCR).
    MissingSegment,
    /// HL hierarchy broken: unknown parent, out of order, wrong level.
    InvalidHierarchy,
    // ---- element (IK4) ----
    /// A required element is empty.
    MissingElement,
    /// An element is longer than allowed (or than the configured cap).
    ElementTooLong,
    /// An element contains bytes that are not valid text (not UTF-8).
    InvalidCharacter,
    /// A code value is not valid here (e.g. HL04 not 0/1, unknown date format).
    InvalidCodeValue,
    /// A date is not a real calendar date.
    InvalidDate,
    /// A numeric value (R/N type) does not parse.
    InvalidNumber,
}

impl ErrorKind {
    /// The acknowledgement code for this kind.
    pub fn ack_code(self) -> AckCode {
        use AckLevel::*;
        use ErrorKind::*;
        let (level, code) = match self {
            NotX12 => (Interchange, "024"),
            InvalidIsa => (Interchange, "022"),
            InvalidSegmentTerminator => (Interchange, "004"),
            InvalidElementSeparator => (Interchange, "026"),
            InvalidComponentSeparator => (Interchange, "027"),
            AmbiguousDelimiters => (Interchange, "026"),
            UnsupportedInterchangeVersion => (Interchange, "017"),
            InterchangeControlMismatch => (Interchange, "001"),
            GroupCountMismatch => (Interchange, "021"),
            PrematureEnd => (Interchange, "023"),
            InvalidEnvelopeStructure => (Interchange, "024"),
            Io => (Interchange, "023"),
            GroupTrailerMissing => (Group, "3"),
            GroupControlMismatch => (Group, "4"),
            SetCountMismatch => (Group, "5"),
            DuplicateGroupControl => (Group, "19"),
            UnsupportedTransaction => (TransactionSet, "1"),
            SetTrailerMissing => (TransactionSet, "2"),
            SetControlMismatch => (TransactionSet, "3"),
            SegmentCountMismatch => (TransactionSet, "4"),
            SetTooLarge => (TransactionSet, "5"),
            InvalidSetControlNumber => (TransactionSet, "7"),
            DuplicateSetControl => (TransactionSet, "23"),
            UnrecognizedSegment => (Segment, "1"),
            UnexpectedSegment => (Segment, "2"),
            MissingSegment => (Segment, "3"),
            InvalidHierarchy => (Segment, "7"),
            MissingElement => (Element, "1"),
            ElementTooLong => (Element, "5"),
            InvalidCharacter => (Element, "6"),
            InvalidCodeValue => (Element, "7"),
            InvalidDate => (Element, "8"),
            InvalidNumber => (Element, "6"),
        };
        AckCode { level, code }
    }

    /// Short stable name used in messages and tests.
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            NotX12 => "not X12",
            InvalidIsa => "invalid ISA",
            InvalidSegmentTerminator => "invalid segment terminator",
            InvalidElementSeparator => "invalid element separator",
            InvalidComponentSeparator => "invalid component separator",
            AmbiguousDelimiters => "ambiguous delimiters",
            UnsupportedInterchangeVersion => "unsupported interchange version",
            InterchangeControlMismatch => "interchange control number mismatch",
            GroupCountMismatch => "group count mismatch",
            PrematureEnd => "premature end of input",
            InvalidEnvelopeStructure => "invalid envelope structure",
            Io => "I/O error",
            GroupTrailerMissing => "group trailer missing",
            GroupControlMismatch => "group control number mismatch",
            SetCountMismatch => "transaction set count mismatch",
            DuplicateGroupControl => "duplicate group control number",
            UnsupportedTransaction => "unsupported transaction set",
            SetTrailerMissing => "transaction set trailer missing",
            SetControlMismatch => "transaction set control number mismatch",
            SegmentCountMismatch => "segment count mismatch",
            InvalidSetControlNumber => "invalid transaction set control number",
            DuplicateSetControl => "duplicate transaction set control number",
            SetTooLarge => "transaction set too large",
            UnrecognizedSegment => "unrecognized segment id",
            UnexpectedSegment => "unexpected segment",
            MissingSegment => "required segment missing",
            InvalidHierarchy => "invalid HL hierarchy",
            MissingElement => "required element missing",
            ElementTooLong => "element too long",
            InvalidCharacter => "invalid character",
            InvalidCodeValue => "invalid code value",
            InvalidDate => "invalid date",
            InvalidNumber => "invalid number",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an element sits inside its segment: `CLM05-3` is element 5,
/// component 3. Repetition is 1-based when the element repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ElementPos {
    /// 1-based element position (IK401-1).
    pub element: u16,
    /// 1-based component position within a composite (IK401-2).
    pub component: Option<u16>,
    /// 1-based repetition (IK401-3).
    pub repetition: Option<u16>,
}

/// Where an error happened. Positions are 1-based like the 999 IK302.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Position {
    /// Segment position within the transaction set, ST = 1 (IK302).
    pub segment_in_set: Option<usize>,
    /// Segment position within the whole input, first ISA = 1.
    pub segment_in_file: usize,
    /// Byte offset of the segment's first byte in the input.
    pub byte_offset: u64,
    /// The segment id (`CLM`), or empty when no segment could be read.
    pub segment_id: String,
    /// The element, when the error is about one element.
    pub element: Option<ElementPos>,
    /// The loop the segment belongs to, when known (IK303).
    pub loop_id: Option<&'static str>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = if self.segment_id.is_empty() {
            "?"
        } else {
            &self.segment_id
        };
        match self.element {
            Some(e) => {
                write!(f, "{id}{:02}", e.element)?;
                if let Some(c) = e.component {
                    write!(f, "-{c}")?;
                }
                if let Some(r) = e.repetition {
                    write!(f, " (repetition {r})")?;
                }
            }
            None => write!(f, "{id}")?,
        }
        write!(f, " (segment {} in file", self.segment_in_file)?;
        if let Some(n) = self.segment_in_set {
            write!(f, ", {n} in set")?;
        }
        if let Some(l) = self.loop_id {
            write!(f, ", loop {l}")?;
        }
        write!(f, ", byte {})", self.byte_offset)
    }
}

/// Something the reader accepted that the sender should fix (a base guide
/// id, GS08 and ST03 disagreeing): shown in the report, never a reason to
/// reject, so never in a 999 or TA1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X12Warning {
    /// Where (the set's ST).
    pub position: Position,
    /// A sentence for a person.
    pub message: String,
}

/// An error found while reading X12, with its acknowledgement code, position
/// and a plain-language reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} [{code}] at {position}: {reason}", code = kind.ack_code())]
pub struct X12Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where it went wrong.
    pub position: Position,
    /// A sentence for a person.
    pub reason: String,
}

impl X12Error {
    /// Builds an error.
    pub fn new(kind: ErrorKind, position: Position, reason: impl Into<String>) -> Self {
        Self {
            kind,
            position,
            reason: reason.into(),
        }
    }

    /// Shortcut for the acknowledgement code.
    pub fn ack_code(&self) -> AckCode {
        self.kind.ack_code()
    }

    /// Returns the error with the element position set.
    pub fn at_element(mut self, element: ElementPos) -> Self {
        self.position.element = Some(element);
        self
    }
}
