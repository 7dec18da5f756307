//! Delimiters learned from the fixed-width ISA segment.
//!
//! X12 has no escape character: the sender picks four bytes that never occur
//! in the data and announces them in the ISA, whose layout is fixed (106 bytes
//! including the terminator). Reading them positionally is the only reliable
//! way to learn them, so this module also verifies the fixed width: a short
//! ISA field shifts every later position and would silently yield garbage.

use crate::error::{ErrorKind, Position, X12Error};

/// Length of an ISA segment including its terminator.
pub const ISA_LEN: usize = 106;

/// 0-based offsets of the element separator inside a fixed-width ISA.
const ISA_SEPARATOR_OFFSETS: [usize; 16] = [
    3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103,
];

/// The UTF-8 byte-order mark some Windows tools put before `ISA`.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The four X12 delimiters of one interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// Element separator (ISA byte 3), usually `*`.
    pub element: u8,
    /// Repetition separator (ISA11), usually `^`. `None` when ISA11 is
    /// alphanumeric (the 4010 habit of sending `U`): data must then never be
    /// split on it.
    pub repetition: Option<u8>,
    /// Component (sub-element) separator (ISA16), usually `:`.
    pub component: u8,
    /// Segment terminator (ISA byte 105), usually `~`.
    pub segment: u8,
}

impl Default for Delimiters {
    fn default() -> Self {
        Self {
            element: b'*',
            repetition: Some(b'^'),
            component: b':',
            segment: b'~',
        }
    }
}

/// True for the bytes tolerated between segments.
pub(crate) fn is_layout_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Offset of the first `ISA` after an optional BOM and leading whitespace.
///
/// Rejects input that cannot be X12 text, naming UTF-16 explicitly because it
/// is the most common "looks like X12 in an editor" failure.
pub fn find_isa(input: &[u8]) -> Result<usize, X12Error> {
    let body = input.strip_prefix(UTF8_BOM).unwrap_or(input);
    let skipped = input.len() - body.len();
    let lead = body
        .iter()
        .position(|b| !is_layout_whitespace(*b))
        .unwrap_or(body.len());
    let rest = body.get(lead..).unwrap_or_default();
    if rest.starts_with(b"ISA") {
        return Ok(skipped + lead);
    }
    let reason = if rest.is_empty() {
        "input is empty".to_string()
    } else if rest.starts_with(b"\xFF\xFE")
        || rest.starts_with(b"\xFE\xFF")
        || rest.get(1) == Some(&0)
    {
        "input looks like UTF-16 text; X12 must be single-byte text starting with ISA".to_string()
    } else if rest.starts_with(b"GS") || rest.starts_with(b"ST") {
        "input starts with a GS/ST segment but has no ISA interchange header".to_string()
    } else {
        let shown: String = rest
            .iter()
            .take(8)
            .map(|b| {
                if b.is_ascii_graphic() {
                    *b as char
                } else {
                    '.'
                }
            })
            .collect();
        format!("input does not start with an ISA segment (starts with \"{shown}\")")
    };
    Err(X12Error::new(
        ErrorKind::NotX12,
        Position {
            segment_in_file: 1,
            byte_offset: (skipped + lead) as u64,
            ..Position::default()
        },
        reason,
    ))
}

impl Delimiters {
    /// Reads the delimiters from an ISA segment starting at `isa[0]`.
    ///
    /// `segment_in_file` and `byte_offset` only label errors.
    pub fn from_isa(
        isa: &[u8],
        segment_in_file: usize,
        byte_offset: u64,
    ) -> Result<Self, X12Error> {
        let err = |kind, reason: String| {
            X12Error::new(
                kind,
                Position {
                    segment_in_file,
                    byte_offset,
                    segment_id: "ISA".into(),
                    ..Position::default()
                },
                reason,
            )
        };
        let Some(fixed) = isa.get(..ISA_LEN) else {
            return Err(err(
                ErrorKind::InvalidIsa,
                format!(
                    "ISA segment is {} bytes but must be exactly {ISA_LEN} including the terminator",
                    isa.len()
                ),
            ));
        };
        let byte = |i: usize| fixed.get(i).copied().unwrap_or(0);
        let element = byte(3);
        let repetition_raw = byte(82);
        let component = byte(104);
        let segment = byte(105);
        check_separator(
            element,
            "element separator",
            ErrorKind::InvalidElementSeparator,
        )
        .map_err(|r| err(ErrorKind::InvalidElementSeparator, r))?;
        if let Some(bad) = ISA_SEPARATOR_OFFSETS.iter().find(|&&i| byte(i) != element) {
            return Err(err(
                ErrorKind::InvalidIsa,
                format!(
                    "ISA is not fixed width: expected element separator {:?} at byte {bad}, found {:?}",
                    element as char,
                    byte(*bad) as char
                ),
            ));
        }
        check_separator(
            component,
            "component separator (ISA16)",
            ErrorKind::InvalidComponentSeparator,
        )
        .map_err(|r| err(ErrorKind::InvalidComponentSeparator, r))?;
        check_terminator(segment).map_err(|r| err(ErrorKind::InvalidSegmentTerminator, r))?;
        let repetition = (!repetition_raw.is_ascii_alphanumeric()
            && !is_layout_whitespace(repetition_raw))
        .then_some(repetition_raw);
        let delims = Self {
            element,
            repetition,
            component,
            segment,
        };
        delims
            .check_distinct()
            .map_err(|r| err(ErrorKind::AmbiguousDelimiters, r))?;
        if let Some(i) = fixed
            .get(..104)
            .and_then(|head| head.iter().position(|&b| b == segment || b == component))
        {
            return Err(err(
                ErrorKind::AmbiguousDelimiters,
                format!(
                    "ISA byte {i} ({:?}) is a delimiter character inside an ISA field",
                    byte(i) as char
                ),
            ));
        }
        Ok(delims)
    }

    /// Rejects a byte used in two roles: the reader could not tell a
    /// component boundary from a repetition (the ISA11 == ISA16 files).
    fn check_distinct(&self) -> Result<(), String> {
        let mut roles = vec![
            ("element separator", self.element),
            ("component separator (ISA16)", self.component),
            ("segment terminator", self.segment),
        ];
        if let Some(r) = self.repetition {
            roles.push(("repetition separator (ISA11)", r));
        }
        for (i, (name_a, a)) in roles.iter().enumerate() {
            for (name_b, b) in roles.iter().skip(i + 1) {
                if a == b {
                    return Err(format!(
                        "the same character {:?} is used as {name_a} and {name_b}",
                        *a as char
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Element and component separators must be printable-or-control ASCII that
/// cannot be data or layout.
fn check_separator(b: u8, role: &str, _kind: ErrorKind) -> Result<(), String> {
    if b.is_ascii_alphanumeric() || !b.is_ascii() || is_layout_whitespace(b) {
        return Err(format!(
            "{role} {:?} (0x{b:02X}) cannot be a delimiter: it is a letter, digit, whitespace or non-ASCII byte",
            b as char
        ));
    }
    Ok(())
}

/// The terminator may be a line break (seen in real files) but never a
/// letter or digit, which would cut data.
fn check_terminator(b: u8) -> Result<(), String> {
    if b.is_ascii_alphanumeric() || !b.is_ascii() || b == b' ' {
        return Err(format!(
            "segment terminator {:?} (0x{b:02X}) is alphanumeric, a space or non-ASCII",
            b as char
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISA: &[u8] = b"ISA*00*          *00*          *ZZ*SUBMITTERID    *ZZ*RECEIVERID     *240101*1200*^*00501*000000001*0*T*:~";

    #[test]
    fn learns_standard_delimiters() {
        let d = Delimiters::from_isa(ISA, 1, 0);
        assert_eq!(d, Ok(Delimiters::default()));
    }

    #[test]
    fn alphanumeric_repetition_means_none() {
        let mut isa = ISA.to_vec();
        if let Some(b) = isa.get_mut(82) {
            *b = b'U';
        }
        let d = Delimiters::from_isa(&isa, 1, 0).map(|d| d.repetition);
        assert_eq!(d, Ok(None));
    }

    #[test]
    fn same_byte_for_repetition_and_component_is_rejected() {
        let mut isa = ISA.to_vec();
        if let Some(b) = isa.get_mut(104) {
            *b = b'^';
        }
        let kind = Delimiters::from_isa(&isa, 1, 0).map_err(|e| e.kind);
        assert_eq!(kind, Err(ErrorKind::AmbiguousDelimiters));
    }

    #[test]
    fn bom_and_utf16_are_recognised() {
        let mut with_bom = UTF8_BOM.to_vec();
        with_bom.extend_from_slice(ISA);
        assert_eq!(find_isa(&with_bom), Ok(3));
        let utf16 = b"I\0S\0A\0*\0";
        let err = find_isa(utf16).map_err(|e| e.reason);
        assert!(matches!(err, Err(r) if r.contains("UTF-16")));
    }
}
