//! The bad-input corpus: each file is rejected with the expected error kind,
//! at the expected layer and position, by both the in-memory and the
//! streaming reader.

use x12::{AckLevel, ErrorKind, Reader, StreamReader, X12Error};

use crate::support::bad;

/// Everything a reader said about one input.
#[derive(Debug, Default)]
struct Outcome {
    fatal: Option<X12Error>,
    /// Per set: `None` when accepted, else its errors.
    sets: Vec<Option<Vec<X12Error>>>,
    envelope: Vec<X12Error>,
}

fn read_in_memory(bytes: &[u8]) -> Outcome {
    let mut reader = match Reader::new(bytes) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                fatal: Some(e),
                ..Outcome::default()
            };
        }
    };
    let sets = reader.by_ref().map(|s| s.err().map(|r| r.errors)).collect();
    Outcome {
        fatal: None,
        sets,
        envelope: reader.finish().errors,
    }
}

fn read_streaming(bytes: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let mut stream = StreamReader::new(bytes);
    for item in stream.by_ref() {
        match item {
            Ok(owned) => out.sets.push(owned.parse().err().map(|r| r.errors)),
            Err(e) => out.fatal = Some(e),
        }
    }
    out.envelope = stream.finish().errors;
    if out.fatal.is_some() {
        out.envelope.clear();
    }
    out
}

/// Where an expected error should appear.
#[derive(Debug, Clone, Copy)]
enum Where {
    /// The input is rejected before any set is read.
    Fatal,
    /// Among the envelope (interchange/group) errors.
    Envelope,
    /// Among the errors of set number `n` (0-based).
    Set(usize),
}

struct Expect {
    file: &'static str,
    kind: ErrorKind,
    at: Where,
    segment_id: &'static str,
    segment_in_file: usize,
    element: Option<u16>,
}

const fn expect(
    file: &'static str,
    kind: ErrorKind,
    at: Where,
    segment_id: &'static str,
    segment_in_file: usize,
    element: Option<u16>,
) -> Expect {
    Expect {
        file,
        kind,
        at,
        segment_id,
        segment_in_file,
        element,
    }
}

/// The corpus and its expected verdicts. Segment numbers are 1-based lines
/// of the files (one segment per line; ISA = 1).
const CORPUS: &[Expect] = &[
    expect(
        "truncated.x12",
        ErrorKind::SetTrailerMissing,
        Where::Set(0),
        "HI",
        31,
        None,
    ),
    expect(
        "truncated.x12",
        ErrorKind::GroupTrailerMissing,
        Where::Envelope,
        "",
        32,
        None,
    ),
    expect(
        "truncated.x12",
        ErrorKind::PrematureEnd,
        Where::Envelope,
        "",
        32,
        None,
    ),
    expect(
        "wrong_se_count.x12",
        ErrorKind::SegmentCountMismatch,
        Where::Set(0),
        "SE",
        49,
        Some(1),
    ),
    expect(
        "wrong_ge_count.x12",
        ErrorKind::SetCountMismatch,
        Where::Envelope,
        "GE",
        50,
        Some(1),
    ),
    expect(
        "wrong_iea_count.x12",
        ErrorKind::GroupCountMismatch,
        Where::Envelope,
        "IEA",
        51,
        Some(1),
    ),
    expect(
        "mismatched_se02.x12",
        ErrorKind::SetControlMismatch,
        Where::Set(0),
        "SE",
        49,
        Some(2),
    ),
    expect(
        "mismatched_ge02.x12",
        ErrorKind::GroupControlMismatch,
        Where::Envelope,
        "GE",
        50,
        Some(2),
    ),
    expect(
        "mismatched_iea02.x12",
        ErrorKind::InterchangeControlMismatch,
        Where::Envelope,
        "IEA",
        51,
        Some(2),
    ),
    expect(
        "ambiguous_delimiters.x12",
        ErrorKind::AmbiguousDelimiters,
        Where::Fatal,
        "ISA",
        1,
        None,
    ),
    expect(
        "alphanumeric_terminator.x12",
        ErrorKind::InvalidSegmentTerminator,
        Where::Fatal,
        "ISA",
        1,
        None,
    ),
    expect(
        "short_isa.x12",
        ErrorKind::InvalidIsa,
        Where::Fatal,
        "ISA",
        1,
        None,
    ),
    expect(
        "mixed_delimiters.x12",
        ErrorKind::InvalidEnvelopeStructure,
        Where::Envelope,
        "GS|HC|SUBMITTERID|RECEIVERID|20240115|1200|905|X|005010X222A1",
        2,
        None,
    ),
    expect("not_x12.x12", ErrorKind::NotX12, Where::Fatal, "", 1, None),
    expect("utf16.x12", ErrorKind::NotX12, Where::Fatal, "", 1, None),
    expect(
        "huge_element.x12",
        ErrorKind::ElementTooLong,
        Where::Set(0),
        "NM1",
        25,
        Some(4),
    ),
    expect(
        "unknown_transaction.x12",
        ErrorKind::UnsupportedTransaction,
        Where::Set(0),
        "ST",
        3,
        Some(1),
    ),
    expect(
        "duplicate_control_number.x12",
        ErrorKind::DuplicateSetControl,
        Where::Set(1),
        "ST",
        50,
        Some(2),
    ),
    expect(
        "version_4010.x12",
        ErrorKind::UnsupportedInterchangeVersion,
        Where::Envelope,
        "ISA",
        1,
        Some(12),
    ),
    expect(
        "bad_hl_parent.x12",
        ErrorKind::InvalidHierarchy,
        Where::Set(0),
        "HL",
        23,
        Some(2),
    ),
    expect(
        "invalid_utf8.x12",
        ErrorKind::InvalidCharacter,
        Where::Set(0),
        "NM1",
        25,
        Some(4),
    ),
    expect(
        "lowercase_segment.x12",
        ErrorKind::UnrecognizedSegment,
        Where::Set(0),
        "n3",
        26,
        None,
    ),
];

fn find<'o>(out: &'o Outcome, e: &Expect) -> Option<&'o X12Error> {
    let pool: Vec<&X12Error> = match e.at {
        Where::Fatal => out.fatal.iter().collect(),
        Where::Envelope => out.envelope.iter().collect(),
        Where::Set(n) => out
            .sets
            .get(n)
            .and_then(|s| s.as_ref())
            .map(|v| v.iter().collect())
            .unwrap_or_default(),
    };
    pool.into_iter().find(|x| x.kind == e.kind)
}

#[test]
fn every_bad_file_is_rejected_with_kind_and_position() {
    for e in CORPUS {
        let out = read_in_memory(&bad(e.file));
        let Some(err) = find(&out, e) else {
            panic!(
                "{}: expected {:?} at {:?}, got {out:#?}",
                e.file, e.kind, e.at
            );
        };
        assert_eq!(err.position.segment_id, e.segment_id, "{}: {err}", e.file);
        assert_eq!(
            err.position.segment_in_file, e.segment_in_file,
            "{}: {err}",
            e.file
        );
        assert_eq!(
            err.position.element.map(|p| p.element),
            e.element,
            "{}: {err}",
            e.file
        );
        assert!(!err.reason.is_empty());
        // Display names the kind, the 999/TA1 code and the position.
        let shown = err.to_string();
        assert!(
            shown.contains(err.kind.name()) && shown.contains(err.ack_code().code),
            "{shown}"
        );
    }
}

#[test]
fn streaming_reader_reaches_the_same_verdicts() {
    for e in CORPUS {
        let out = read_streaming(&bad(e.file));
        assert!(
            find(&out, e).is_some(),
            "{}: expected {:?} at {:?}, got {out:#?}",
            e.file,
            e.kind,
            e.at
        );
    }
}

#[test]
fn set_errors_do_not_stop_other_sets() {
    let out = read_in_memory(&bad("duplicate_control_number.x12"));
    assert_eq!(out.sets.len(), 2);
    assert!(
        out.sets[0].is_none(),
        "the first set with the control number is accepted"
    );
    assert!(out.envelope.is_empty());
}

#[test]
fn unsupported_transaction_is_named() {
    let out = read_in_memory(&bad("unknown_transaction.x12"));
    let errors = out.sets[0].as_ref().expect("rejected");
    assert_eq!(
        errors[0].reason,
        "transaction set 270 (005010X279A1) is not supported"
    );
    assert_eq!(errors[0].ack_code().level, AckLevel::TransactionSet);
    assert_eq!(errors[0].ack_code().code, "1");
}

#[test]
fn interchange_errors_reject_everything_group_errors_do_not() {
    let report = Reader::new(&bad("mismatched_iea02.x12"))
        .expect("X12")
        .finish();
    assert!(report.rejects_everything());
    let report = Reader::new(&bad("wrong_ge_count.x12"))
        .expect("X12")
        .finish();
    assert!(!report.rejects_everything());
    assert_eq!(report.errors[0].ack_code().level, AckLevel::Group);
}

#[test]
fn element_cap_is_configurable_and_applies_in_streaming() {
    let limits = x12::Limits {
        max_element_bytes: 8,
        ..x12::Limits::default()
    };
    let bytes = crate::support::fixture("837p.x12");
    let set = Reader::with_limits(&bytes, limits)
        .expect("X12")
        .next()
        .expect("one set");
    let errors = set.expect_err("rejected").errors;
    assert!(errors.iter().all(|e| e.kind == ErrorKind::ElementTooLong));
    let small_sets = x12::Limits {
        max_set_bytes: 200,
        ..x12::Limits::default()
    };
    let mut stream = StreamReader::with_limits(bytes.as_slice(), small_sets);
    let owned = stream.next().expect("one set").expect("not fatal");
    assert!(owned.len() <= 200);
    let kinds: Vec<_> = owned
        .parse()
        .expect_err("rejected")
        .errors
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [ErrorKind::SetTooLarge]);
}

/// A 278 whose counts or envelope are wrong is rejected with a reason that
/// names the element and both numbers, as an 837 is, by both readers.
#[test]
fn a_278_with_wrong_counts_or_envelope_is_rejected_with_a_precise_reason() {
    let good = String::from_utf8(crate::support::fixture("278_approved.x12")).unwrap_or_default();
    let cases = [
        (
            good.replace("SE*30*0001~", "SE*29*0001~"),
            Where::Set(0),
            ErrorKind::SegmentCountMismatch,
            "SE01 says \"29\" segments but the set has 30 (ST to SE inclusive)",
        ),
        (
            good.replace("SE*30*0001~", "SE*30*0002~"),
            Where::Set(0),
            ErrorKind::SetControlMismatch,
            "SE02 \"0002\" does not match ST02 \"0001\"",
        ),
        (
            good.replace("GE*1*1202~", "GE*2*1202~"),
            Where::Envelope,
            ErrorKind::SetCountMismatch,
            "GE01 says \"2\" transaction sets but group \"1202\" contains 1",
        ),
        (
            good.replace("IEA*1*000001202~", "IEA*1*000001299~"),
            Where::Envelope,
            ErrorKind::InterchangeControlMismatch,
            "IEA02 \"000001299\" does not match ISA13 \"000001202\"",
        ),
        (
            good.replace("HL*5*4*SS*0~", "HL*5*9*SS*0~"),
            Where::Set(0),
            ErrorKind::InvalidHierarchy,
            "HL02 parent \"9\" is not an earlier HL01 in this set",
        ),
    ];
    for (input, place, kind, reason) in cases {
        assert_ne!(input, good, "{reason}: the mutation must apply");
        for outcome in [
            read_in_memory(input.as_bytes()),
            read_streaming(input.as_bytes()),
        ] {
            let errors: Vec<&X12Error> = match place {
                Where::Set(n) => outcome.sets[n].iter().flatten().collect(),
                _ => outcome.envelope.iter().collect(),
            };
            assert!(
                errors
                    .iter()
                    .any(|e| e.kind == kind && e.reason.contains(reason)),
                "{reason}: {errors:#?}"
            );
        }
    }
}
