//! The 999 Implementation Acknowledgment (X12 005010X231A1), generated from the same
//! [`FileConversion`] as the JSON report. Pure: no clock, no I/O; the caller passes
//! the envelope values ([`AckEnvelope`]).
//!
//! Layout: one interchange, one `GS*FA` group, and one `ST*999` per functional group
//! acknowledged:
//!
//! ```text
//! ISA … GS*FA …
//!   ST*999*0001*005010X231A1
//!   AK1*{GS01}*{GS06}*{GS08}
//!     AK2*{ST01}*{ST02}*{ST03}
//!       IK3*{segment id}*{position in set}**{IK304}     one per segment in error
//!       IK4*{element[:component]}**{IK403}             one per element in error
//!     IK5*{A|R}*{IK502…}
//!   AK9*{A|P|R}*{included}*{received}*{accepted}*{AK905…}
//!   SE … GE … IEA
//! ```
//!
//! Choices the TR3 leaves open, and why:
//! * IK404 (a copy of the bad element) is never sent: it may be a member id or a name,
//!   and the segment and element positions already locate it.
//! * AK101 (GS01) is derived from ST01, because the conversion keeps GS06 and the
//!   implementation guide per set but not GS01; AK103 is the set's ST03 (else GS08).
//! * Interchange-level problems would belong in a TA1. We report them in the JSON
//!   report and reject every group here (AK901 = R), so a partner that reads only the
//!   999 still sees that nothing was applied. A file with no readable group gets no
//!   999 at all (there is nothing to acknowledge), only the JSON report.

use std::fmt::Write as _;

use edi_fhir::{FileConversion, Problem, ProblemLevel, SetOutcome, TransactionSetResult};
use x12::write::{Group, Interchange, Usage, Writer};

/// The implementation guide of the 999 itself.
pub const ACK_VERSION: &str = "005010X231A1";
/// At most five codes fit IK502–IK506 and AK905–AK909.
const MAX_CODES: usize = 5;
/// IK304 "Segment Has Data Element Errors": the IK3 that carries IK4s.
const SEGMENT_HAS_ELEMENT_ERRORS: &str = "8";
/// IK502 "One or More Segments in Error".
const SEGMENTS_IN_ERROR: &str = "5";

/// Who sends the 999 to whom, when, and its control number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckEnvelope {
    /// Our id (the acknowledged file's ISA08/GS03), ISA06 and GS02 of the 999.
    pub sender_id: String,
    /// The partner's id (the file's ISA06/GS02), ISA08 and GS03 of the 999.
    pub receiver_id: String,
    /// `CCYYMMDD`.
    pub date: String,
    /// `HHMM`.
    pub time: String,
    /// ISA13 and GS06 (at most 9 digits).
    pub control_number: u32,
    /// ISA15 `P` (production) or `T` (test).
    pub production: bool,
}

/// The 999 for a converted file, or `None` when it has no transaction set to
/// acknowledge (not X12, or an envelope too broken to reach an ST).
pub fn generate_999(conversion: &FileConversion, envelope: &AckEnvelope) -> Option<String> {
    let groups = groups(&conversion.transaction_sets);
    if groups.is_empty() {
        return None;
    }
    let group_codes = codes_at(&conversion.file_problems, ProblemLevel::Group);
    let sender = clean(&envelope.sender_id);
    let receiver = clean(&envelope.receiver_id);
    let mut out = Writer::new(&Interchange {
        sender_id: isa_id(&sender),
        receiver_id: isa_id(&receiver),
        date: &envelope.date,
        time: &envelope.time,
        control_number: envelope.control_number,
        usage: if envelope.production {
            Usage::Production
        } else {
            Usage::Test
        },
    });
    out.begin_group(&Group {
        functional_id: "FA",
        sender: &sender,
        receiver: &receiver,
        date: &envelope.date,
        time: &envelope.time,
        control_number: envelope.control_number,
        version: ACK_VERSION,
    });
    for (n, sets) in (1..).zip(&groups) {
        acknowledge_group(
            &mut out,
            n,
            sets,
            conversion.rejects_everything,
            &group_codes,
        );
    }
    Some(out.finish())
}

/// One `ST*999` for the sets of one functional group.
fn acknowledge_group(
    out: &mut Writer,
    number: u32,
    sets: &[&TransactionSetResult],
    group_rejected: bool,
    group_codes: &[String],
) {
    out.begin_set("999", number, Some(ACK_VERSION));
    let first = sets.first().copied();
    out.segment(&format!(
        "AK1*{}*{}*{}",
        functional_id(first.map_or("", |s| s.transaction_type.as_str())),
        clean(first.map_or("", |s| s.group_control_number.as_str())),
        clean(first.map_or("", |s| s.implementation_guide.as_str())),
    ));
    let mut accepted = 0;
    for set in sets {
        accepted += usize::from(acknowledge_set(out, set));
    }
    let verdict = match (group_rejected, accepted) {
        (true, _) | (false, 0) => "R",
        (false, n) if n == sets.len() => "A",
        _ => "P",
    };
    let mut ak9 = format!("AK9*{verdict}*{0}*{0}*{accepted}", sets.len());
    if group_rejected {
        for code in group_codes.iter().take(MAX_CODES) {
            let _ = write!(ak9, "*{code}");
        }
    }
    out.segment(&ak9);
    out.end_set();
}

/// AK2, IK3/IK4 and IK5 for one set; true when the set is accepted (IK501 = A).
fn acknowledge_set(out: &mut Writer, set: &TransactionSetResult) -> bool {
    out.segment(&format!(
        "AK2*{}*{}*{}",
        clean(st01(&set.transaction_type)),
        clean(&set.control_number),
        clean(&set.implementation_guide),
    ));
    let problems = match &set.outcome {
        SetOutcome::Accepted { .. } => {
            out.segment("IK5*A");
            return true;
        }
        SetOutcome::Rejected { problems } => problems,
    };
    let located = segment_errors(out, problems);
    let mut codes = codes_at(problems, ProblemLevel::Set);
    if codes.is_empty() && located {
        codes.push(SEGMENTS_IN_ERROR.to_owned());
    }
    let mut ik5 = String::from("IK5*R");
    for code in codes.iter().take(MAX_CODES) {
        let _ = write!(ik5, "*{code}");
    }
    out.segment(&ik5);
    false
}

/// Writes IK3 (and IK4) for every problem that has a segment position; true when
/// any was written.
fn segment_errors(out: &mut Writer, problems: &[Problem]) -> bool {
    let mut wrote = false;
    let mut open: Option<(usize, String)> = None;
    for problem in problems {
        let (Some(position), Some(id)) = (problem.segment_position, problem.segment_id.as_deref())
        else {
            continue;
        };
        match problem.level {
            ProblemLevel::Segment => {
                out.segment(&format!(
                    "IK3*{}*{position}**{}",
                    clean(id),
                    clean(&problem.code)
                ));
                open = None;
            }
            ProblemLevel::Element => {
                let key = (position, id.to_owned());
                if open.as_ref() != Some(&key) {
                    out.segment(&format!(
                        "IK3*{}*{position}**{SEGMENT_HAS_ELEMENT_ERRORS}",
                        clean(id)
                    ));
                    open = Some(key);
                }
                out.segment(&format!(
                    "IK4*{}**{}",
                    element_position(problem, id),
                    clean(&problem.code)
                ));
            }
            _ => continue,
        }
        wrote = true;
    }
    wrote
}

/// IK401 (`5` or `5:3`) from the report's `CLM05-3`.
fn element_position(problem: &Problem, segment_id: &str) -> String {
    let text = problem.element.as_deref().unwrap_or("");
    let rest = text.strip_prefix(segment_id).unwrap_or(text);
    let mut parts = rest.split('-').map(|p| p.trim().parse::<u16>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(element), Some(component)) => format!("{element}:{component}"),
        (Some(element), None) => element.to_string(),
        // IK401 is required; 1 is the least wrong guess when no element is known.
        (None, _) => "1".to_owned(),
    }
}

/// The distinct codes of the problems at one level, in order of appearance.
fn codes_at(problems: &[Problem], level: ProblemLevel) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for problem in problems.iter().filter(|p| p.level == level) {
        let code = clean(&problem.code);
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// Sets grouped by GS06, in order of first appearance.
fn groups(sets: &[TransactionSetResult]) -> Vec<Vec<&TransactionSetResult>> {
    let mut groups: Vec<Vec<&TransactionSetResult>> = Vec::new();
    for set in sets {
        let same = groups.last_mut().filter(|g| {
            g.first()
                .is_some_and(|f| f.group_control_number == set.group_control_number)
        });
        match same {
            Some(group) => group.push(set),
            None => groups.push(vec![set]),
        }
    }
    groups
}

/// ST01 from the report's type: `837P` → `837`.
fn st01(transaction_type: &str) -> &str {
    let digits = transaction_type
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(transaction_type.len(), |(i, _)| i);
    transaction_type
        .get(..digits)
        .filter(|d| !d.is_empty())
        .unwrap_or(transaction_type)
}

/// GS01 for the functional group a set type travels in.
fn functional_id(transaction_type: &str) -> &'static str {
    match st01(transaction_type) {
        "835" => "HP",
        "834" => "BE",
        "270" => "HS",
        "271" => "HB",
        "276" => "HR",
        "277" => "HN",
        "278" => "HI",
        "820" => "RA",
        _ => "HC",
    }
}

/// An ISA06/ISA08 value from a cleaned id: the writer pads (or cuts) it to 15
/// characters, but an empty one says nothing.
fn isa_id(id: &str) -> &str {
    if id.is_empty() { "UNKNOWN" } else { id }
}

/// Copies a value from the acknowledged file into the 999: the file had its own
/// delimiters, so ours (and control characters) are dropped, and length is capped.
fn clean(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '*' | '~' | ':' | '^') && !c.is_control())
        .take(80)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests;
