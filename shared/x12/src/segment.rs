//! Zero-copy segments and element access.
//!
//! A [`Segment`] is a `&str` slice of the input plus the delimiters in force.
//! Elements are found on demand with `memchr` rather than stored, because most
//! segments are short and a mapper reads only a few elements of each: storing
//! offsets would cost more memory than re-scanning costs time.

use memchr::{memchr, memchr_iter};

use crate::delimiters::{Delimiters, ISA_LEN, is_layout_whitespace};
use crate::error::{ElementPos, ErrorKind, Position, X12Error};
use crate::values::{Date, Decimal, Period};

/// One segment, borrowed from the input, without its terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    text: &'a str,
    delims: Delimiters,
    /// 1-based position in the transaction set (ST = 1).
    pub(crate) index_in_set: usize,
    /// 1-based position in the input.
    pub(crate) index_in_file: usize,
    /// Byte offset in the input.
    pub(crate) byte_offset: u64,
    /// Index of the loop node that owns this segment.
    pub(crate) loop_node: u32,
}

impl<'a> Segment<'a> {
    /// Wraps a segment's text. Positions are used only for error messages.
    pub fn new(text: &'a str, delims: Delimiters) -> Self {
        Self {
            text,
            delims,
            index_in_set: 0,
            index_in_file: 0,
            byte_offset: 0,
            loop_node: 0,
        }
    }

    /// The whole segment text without terminator, e.g. `CLM*A1*100***11:B:1`.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The delimiters in force for this segment.
    pub fn delimiters(&self) -> Delimiters {
        self.delims
    }

    /// The segment id, e.g. `CLM`.
    pub fn id(&self) -> &'a str {
        field(self.text, self.delims.element, 0).unwrap_or(self.text)
    }

    /// 1-based position within the transaction set (ST = 1).
    pub fn position_in_set(&self) -> usize {
        self.index_in_set
    }

    /// 1-based position within the input.
    pub fn position_in_file(&self) -> usize {
        self.index_in_file
    }

    /// Element `n` (1-based, `CLM01` is `element(1)`), or `None` when absent
    /// or empty: in X12 an empty element means "not sent".
    pub fn element(&self, n: usize) -> Option<&'a str> {
        if n == 0 {
            return None;
        }
        field(self.text, self.delims.element, n).filter(|s| !s.is_empty())
    }

    /// Element `n` as raw text including empty (`Some("")`) when present but
    /// empty; `None` only when the segment has fewer elements.
    pub fn raw_element(&self, n: usize) -> Option<&'a str> {
        if n == 0 {
            return None;
        }
        field(self.text, self.delims.element, n)
    }

    /// Number of elements after the id (trailing empty ones included).
    pub fn element_count(&self) -> usize {
        memchr_iter(self.delims.element, self.text.as_bytes()).count()
    }

    /// Iterates the elements after the id (1, 2, ...), empty ones as `""`.
    pub fn elements(&self) -> impl Iterator<Item = &'a str> + 'a {
        split(self.text, self.delims.element).skip(1)
    }

    /// Element `n` viewed as a composite.
    pub fn composite(&self, n: usize) -> Option<Composite<'a>> {
        self.element(n).map(|text| Composite {
            text,
            separator: self.delims.component,
        })
    }

    /// Component `c` (1-based) of element `n`: `SV1-01-2` is
    /// `component(1, 2)`. A non-composite value is its own component 1.
    pub fn component(&self, n: usize, c: usize) -> Option<&'a str> {
        self.composite(n).and_then(|comp| comp.component(c))
    }

    /// The repetitions of element `n` split on the repetition separator
    /// (ISA11). With no usable repetition separator the element is one
    /// repetition.
    pub fn repetitions(&self, n: usize) -> impl Iterator<Item = &'a str> + 'a {
        let value = self.element(n).unwrap_or("");
        let sep = self.delims.repetition;
        let parts: Box<dyn Iterator<Item = &'a str> + 'a> = match sep {
            Some(sep) => Box::new(split(value, sep)),
            None => Box::new(std::iter::once(value)),
        };
        parts.filter(|s| !s.is_empty())
    }

    /// True when element 1 equals `qualifier` (`NM1*85`, `DTP*472`, `REF*F8`).
    pub fn is(&self, id: &str, qualifier: &str) -> bool {
        self.id() == id && self.element(1) == Some(qualifier)
    }

    /// Element `n` as a D8 date (`CCYYMMDD`).
    pub fn date(&self, n: usize) -> Result<Option<Date>, X12Error> {
        let Some(v) = self.element(n) else {
            return Ok(None);
        };
        Date::parse_d8(v).map(Some).ok_or_else(|| {
            self.error_at(
                ErrorKind::InvalidDate,
                ElementPos::at(n),
                format!("{v:?} is not a valid CCYYMMDD date"),
            )
        })
    }

    /// A date or range whose format qualifier is element `format_at` and
    /// value is element `format_at + 1` (DTP02/DTP03, DTM05/DTM06 style):
    /// D8 gives a single date, RD8 a range.
    pub fn period(&self, format_at: usize) -> Result<Option<Period>, X12Error> {
        let value_at = format_at + 1;
        let Some(value) = self.element(value_at) else {
            return Ok(None);
        };
        let format = self.element(format_at).unwrap_or("D8");
        Period::parse(format, value).map(Some).map_err(|reason| {
            let kind = if format == "D8" || format == "RD8" {
                ErrorKind::InvalidDate
            } else {
                ErrorKind::InvalidCodeValue
            };
            self.error_at(kind, ElementPos::at(value_at), reason)
        })
    }

    /// Element `n` as an X12 decimal (R type).
    pub fn decimal(&self, n: usize) -> Result<Option<Decimal>, X12Error> {
        let Some(v) = self.element(n) else {
            return Ok(None);
        };
        v.parse::<Decimal>().map(Some).map_err(|_| {
            self.error_at(
                ErrorKind::InvalidNumber,
                ElementPos::at(n),
                format!("{v:?} is not a decimal number"),
            )
        })
    }

    /// The position of this segment, for errors raised by callers (mappers).
    pub fn position(&self) -> Position {
        Position {
            segment_in_set: (self.index_in_set > 0).then_some(self.index_in_set),
            segment_in_file: self.index_in_file,
            byte_offset: self.byte_offset,
            segment_id: self.id().to_string(),
            element: None,
            loop_id: None,
        }
    }

    /// Builds an error pointing at an element of this segment.
    pub fn error_at(
        &self,
        kind: ErrorKind,
        element: ElementPos,
        reason: impl Into<String>,
    ) -> X12Error {
        X12Error::new(kind, self.position(), reason).at_element(element)
    }
}

impl std::fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text)
    }
}

impl ElementPos {
    /// Element `n`, no component.
    pub fn at(n: usize) -> Self {
        Self {
            element: u16::try_from(n).unwrap_or(u16::MAX),
            component: None,
            repetition: None,
        }
    }

    /// Element `n`, component `c`.
    pub fn component(n: usize, c: usize) -> Self {
        Self {
            component: Some(u16::try_from(c).unwrap_or(u16::MAX)),
            ..Self::at(n)
        }
    }
}

/// A composite element such as `HC:99213:25` (SV101).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Composite<'a> {
    text: &'a str,
    separator: u8,
}

impl<'a> Composite<'a> {
    /// Component `c` (1-based), `None` when absent or empty.
    pub fn component(&self, c: usize) -> Option<&'a str> {
        c.checked_sub(1)
            .and_then(|i| field(self.text, self.separator, i))
            .filter(|s| !s.is_empty())
    }

    /// All components in order, empty ones as `""`.
    pub fn components(&self) -> impl Iterator<Item = &'a str> + 'a {
        split(self.text, self.separator)
    }

    /// The raw composite text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }
}

/// The `n`th (0-based) field of `text` split on `sep`. Delimiters are ASCII
/// so every split point is a char boundary; `get` keeps it panic-free anyway.
pub(crate) fn field(text: &str, sep: u8, n: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut seen = 0;
    for i in memchr_iter(sep, bytes) {
        if seen == n {
            return text.get(start..i);
        }
        seen += 1;
        start = i + 1;
    }
    if seen == n { text.get(start..) } else { None }
}

/// Splits `text` on `sep` (all fields, empty ones included).
pub(crate) fn split(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match memchr(sep, bytes.get(start..)?) {
            Some(rel) => {
                let part = text.get(start..start + rel);
                start += rel + 1;
                part
            }
            None => {
                done = true;
                text.get(start..)
            }
        }
    })
}

/// The `n`th (0-based) field of raw bytes; used before text validation.
pub(crate) fn raw_field(bytes: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    bytes.split(|b| *b == sep).nth(n)
}

/// A segment located in a byte buffer: `start..end` excludes the terminator
/// and surrounding layout whitespace; `next` is where scanning resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub next: usize,
    /// True when this span is an ISA whose delimiters must be (re)read.
    pub is_isa: bool,
}

/// Result of looking for the next segment in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A complete segment.
    Segment(Span),
    /// More bytes are needed (only when `eof` is false).
    NeedMore,
    /// Nothing but layout whitespace remains.
    End,
}

/// Finds the next segment in `buf` from `pos`.
///
/// Layout whitespace (CR, LF, spaces, tabs) before a segment is skipped,
/// which tolerates CRLF line breaks, indentation and trailing newlines. An ISA
/// is taken as its fixed 106 bytes because its terminator is not yet known.
/// At end of input a final segment without terminator is accepted.
pub(crate) fn next_segment(buf: &[u8], pos: usize, delims: &Delimiters, eof: bool) -> Step {
    let rest = buf.get(pos..).unwrap_or_default();
    let Some(lead) = rest.iter().position(|b| !is_layout_whitespace(*b)) else {
        return if eof { Step::End } else { Step::NeedMore };
    };
    let start = pos + lead;
    let body = buf.get(start..).unwrap_or_default();
    if body.len() < 3 && !eof {
        return Step::NeedMore;
    }
    if body.starts_with(b"ISA") {
        if body.len() < ISA_LEN && !eof {
            return Step::NeedMore;
        }
        let len = body.len().min(ISA_LEN);
        return Step::Segment(Span {
            start,
            end: start + len.saturating_sub(1),
            next: start + len,
            is_isa: true,
        });
    }
    match memchr(delims.segment, body) {
        Some(rel) => Step::Segment(Span {
            start,
            end: trim_end(buf, start, start + rel),
            next: start + rel + 1,
            is_isa: false,
        }),
        None if eof => Step::Segment(Span {
            start,
            end: trim_end(buf, start, buf.len()),
            next: buf.len(),
            is_isa: false,
        }),
        None => Step::NeedMore,
    }
}

/// Drops CR/LF before a terminator (files whose terminator is LF and lines
/// end in CRLF).
fn trim_end(buf: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(buf.get(end - 1), Some(b'\r' | b'\n')) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> Segment<'_> {
        Segment::new(text, Delimiters::default())
    }

    #[test]
    fn elements_components_and_repetitions() {
        let s = seg("CLM*A37YH556*500***11:B:1*Y*A*Y*I");
        assert_eq!(s.id(), "CLM");
        assert_eq!(s.element(1), Some("A37YH556"));
        assert_eq!(s.element(3), None);
        assert_eq!(s.raw_element(3), Some(""));
        assert_eq!(s.component(5, 3), Some("1"));
        assert_eq!(s.component(5, 4), None);
        assert_eq!(s.element(99), None);
        assert_eq!(s.element_count(), 9);
        let r = seg("PER*IC*JOHN*TE*5551234^5559999");
        let reps: Vec<_> = r.repetitions(4).collect();
        assert_eq!(reps, ["5551234", "5559999"]);
    }

    #[test]
    fn next_segment_skips_line_breaks() {
        let buf = b"ST*837*1~\r\n  BHT*0019~";
        let d = Delimiters::default();
        let Step::Segment(a) = next_segment(buf, 0, &d, true) else {
            panic!("no segment")
        };
        assert_eq!(&buf[a.start..a.end], b"ST*837*1");
        let Step::Segment(b) = next_segment(buf, a.next, &d, true) else {
            panic!("no segment")
        };
        assert_eq!(&buf[b.start..b.end], b"BHT*0019");
        assert_eq!(next_segment(buf, b.next, &d, true), Step::End);
    }
}
