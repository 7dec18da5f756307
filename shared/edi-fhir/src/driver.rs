//! The conversion driver: reads a file with the `x12` crate, runs the mapper of
//! each transaction set's kind, and hands out verdicts and changes in one of
//! three shapes: [`convert`] (a whole file in memory), [`stream_changes`]
//! (bounded memory, each accepted set's changes after its verdict) and
//! [`verdicts`] (no JSON at all, for a first pass).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;
use x12::{EnvelopeReport, RejectedSet, TransactionKind, TransactionSet, X12Error};

use crate::{
    Change, EnvelopeSummary, FileConversion, MapResult, MappingConfig, Problem, SetOutcome,
    TransactionSetResult, Warning, apply, changes, claim, enroll, preauth, remit,
};

/// Converts a whole file held in memory (zero-copy reader).
pub fn convert(input: &[u8], config: &MappingConfig) -> FileConversion {
    let mut sets = Vec::new();
    let mut reader = match x12::Reader::new(input) {
        Ok(r) => r,
        Err(e) => return unreadable(&e),
    };
    let mut envelope = EnvelopeSummary::default();
    for set in reader.by_ref() {
        note_envelope(&mut envelope, &set);
        sets.push(map_result(set, config));
    }
    finish(envelope, reader.finish(), sets)
}

/// What a fresh store would hold after applying `changes` in order: the
/// `patient-access convert` view of a file, and the golden-test output.
pub fn fold<'c>(
    changes: impl IntoIterator<Item = &'c Change>,
) -> BTreeMap<(fhir::ResourceType, String), Value> {
    let mut store: BTreeMap<(fhir::ResourceType, String), Value> = BTreeMap::new();
    for change in changes {
        let key = (change.resource_type, change.id.clone());
        if let Some(next) = apply(store.get(&key), change) {
            store.insert(key, next);
        }
    }
    store
}

fn unreadable(e: &X12Error) -> FileConversion {
    FileConversion {
        interchange_control_number: None,
        sender_id: None,
        receiver_id: None,
        transaction_sets: Vec::new(),
        file_problems: vec![Problem::from(e)],
        rejects_everything: true,
    }
}

fn finish(
    mut envelope: EnvelopeSummary,
    report: EnvelopeReport,
    sets: Vec<TransactionSetResult>,
) -> FileConversion {
    add_report(&mut envelope, &report);
    envelope.into_conversion(sets)
}

fn add_report(envelope: &mut EnvelopeSummary, report: &EnvelopeReport) {
    envelope
        .file_problems
        .extend(report.errors.iter().map(Problem::from));
    envelope.rejects_everything = !report.errors.is_empty();
}

fn note_envelope(envelope: &mut EnvelopeSummary, set: &Result<TransactionSet<'_>, RejectedSet>) {
    match set {
        Ok(s) => note_interchange(envelope, s.interchange()),
        Err(r) => note_interchange(envelope, &r.interchange),
    }
}

/// The first interchange's ids name the file in its report.
fn note_interchange(envelope: &mut EnvelopeSummary, isa: &x12::InterchangeHeader) {
    if envelope.interchange_control_number.is_some() {
        return;
    }
    let trimmed = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    envelope.interchange_control_number = trimmed(&isa.control_number);
    envelope.sender_id = trimmed(&isa.sender_id);
    envelope.receiver_id = trimmed(&isa.receiver_id);
}

fn map_result(
    set: Result<TransactionSet<'_>, RejectedSet>,
    config: &MappingConfig,
) -> TransactionSetResult {
    match set {
        Ok(set) => map_set(&set, config),
        Err(rejected) => TransactionSetResult {
            group_control_number: rejected.group.control_number.clone(),
            control_number: rejected.control_number.clone(),
            transaction_type: rejected.transaction_id.clone(),
            implementation_guide: rejected
                .version
                .clone()
                .unwrap_or_else(|| rejected.group.version.clone()),
            outcome: SetOutcome::Rejected {
                problems: rejected.errors.iter().map(Problem::from).collect(),
            },
            warnings: Vec::new(),
        },
    }
}

/// Runs the mapper of the set's kind into `out`.
fn run_mapper(
    set: &TransactionSet<'_>,
    config: &MappingConfig,
    out: &mut changes::Changes<'_>,
) -> MapResult {
    match set.guide().kind {
        TransactionKind::Professional
        | TransactionKind::Institutional
        | TransactionKind::Dental => claim::map(set, config, out),
        TransactionKind::Remittance => remit::map(set, config, out),
        TransactionKind::Enrollment => enroll::map(set, config, out),
        TransactionKind::ServicesReview => preauth::map(set, config, out),
    }
}

fn transaction_type(kind: TransactionKind) -> &'static str {
    match kind {
        TransactionKind::Professional => "837P",
        TransactionKind::Institutional => "837I",
        TransactionKind::Dental => "837D",
        TransactionKind::Remittance => "835",
        TransactionKind::Enrollment => "834",
        TransactionKind::ServicesReview => "278",
    }
}

fn set_result(set: &TransactionSet<'_>, outcome: SetOutcome) -> TransactionSetResult {
    TransactionSetResult {
        group_control_number: set.group().control_number.clone(),
        control_number: set.control_number().to_owned(),
        transaction_type: transaction_type(set.guide().kind).to_owned(),
        implementation_guide: set.guide().version.to_owned(),
        outcome,
        warnings: set.warnings().iter().map(Warning::from).collect(),
    }
}

fn outcome_of(mapped: MapResult, changes: Vec<Change>) -> SetOutcome {
    match mapped {
        Ok(claims) => SetOutcome::Accepted { changes, claims },
        Err(errors) => SetOutcome::Rejected {
            problems: errors.iter().map(Problem::from).collect(),
        },
    }
}

/// Maps one accepted set; a mapping error rejects the set.
fn map_set(set: &TransactionSet<'_>, config: &MappingConfig) -> TransactionSetResult {
    let mut out = changes::Changes::default();
    let mapped = run_mapper(set, config, &mut out);
    set_result(set, outcome_of(mapped, out.into_vec()))
}

/// What [`stream_changes`] reports, in order: per set, its verdict, then
/// (accepted sets only) each change, then the end of the set.
#[derive(Debug)]
pub enum Event<'e> {
    /// The set's verdict; `Accepted` carries no changes here (they follow).
    Set(&'e TransactionSetResult),
    /// One change of the current (accepted) set, in apply order.
    Change(Change),
    /// The current set is complete.
    SetEnd,
}

/// JSON that [`stream_changes`] keeps for one set so as to map it only
/// once: a set whose changes fit is mapped once and its changes handed out
/// after its verdict; a bigger one (estimated from its X12 size, or found
/// while mapping) is mapped twice, first for the verdict alone (no JSON),
/// then handing out each change as it is made.
pub const STREAMING_BUFFER_BYTES: usize = 64 << 20;

/// JSON bytes per X12 byte above which a set is not even tried in the
/// buffer (the generated 835 is the most expansive kind, at about 24).
const EXPANSION_ESTIMATE: usize = 16;

/// Bounded memory even for one huge transaction set (real 837s may put tens
/// of thousands of claims in one ST): per-set acceptance needs the verdict
/// before anything is handed out, so each accepted set's changes are kept
/// up to [`STREAMING_BUFFER_BYTES`] of JSON and handed out after the
/// verdict; a set whose changes do not fit is mapped twice, once for the
/// verdict only (nothing serialised) and once to hand out its changes one
/// by one. Memory is one set's bytes plus that budget. Directory resources
/// (Organization, Practitioner) come once per set; Patient and Coverage
/// come once per claim that names them (not folded). As with
/// [`stream_changes`], commit only when the returned summary does not reject
/// everything.
pub fn stream_changes<R: Read>(
    input: R,
    config: &MappingConfig,
    f: impl FnMut(Event<'_>),
) -> EnvelopeSummary {
    streaming(
        input,
        config,
        Budget::Buffer {
            bytes: STREAMING_BUFFER_BYTES,
            expansion: EXPANSION_ESTIMATE,
        },
        f,
    )
}

/// Every set's verdict and the envelope's, mapping each set once without
/// serialising anything: what a first pass needs (for the report and the
/// 999) before a second one applies the changes with [`stream_changes`].
/// `f` receives the same [`TransactionSetResult`]s as
/// [`stream_changes`]'s [`Event::Set`] (accepted ones without changes).
pub fn verdicts<R: Read>(
    input: R,
    config: &MappingConfig,
    mut f: impl FnMut(&TransactionSetResult),
) -> EnvelopeSummary {
    streaming(input, config, Budget::VerdictOnly, |event| {
        if let Event::Set(set) = event {
            f(set);
        }
    })
}

/// How [`streaming`] gets a set's verdict.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// Keep up to `bytes` of JSON per set (map once when it fits), unless
    /// the set's X12 size times `expansion` says it will not fit.
    Buffer { bytes: usize, expansion: usize },
    /// Verdicts only: no changes are handed out at all.
    VerdictOnly,
}

fn streaming<R: Read>(
    input: R,
    config: &MappingConfig,
    budget: Budget,
    mut f: impl FnMut(Event<'_>),
) -> EnvelopeSummary {
    let mut sets = SetReader::new(input);
    // The buffered JSON of a set, its allocation kept from set to set.
    let mut arena = String::new();
    for owned in sets.by_ref() {
        let set = match owned.parse() {
            Ok(set) => set,
            Err(rejected) => {
                f(Event::Set(&map_result(Err(rejected), config)));
                f(Event::SetEnd);
                continue;
            }
        };
        let mut first = match budget {
            Budget::Buffer { bytes, expansion }
                if owned.len().saturating_mul(expansion) <= bytes =>
            {
                changes::Changes::buffered(bytes, &mut arena)
            }
            Budget::Buffer { .. } | Budget::VerdictOnly => changes::Changes::verdict_only(),
        };
        let verdict = run_mapper(&set, config, &mut first);
        let accepted = verdict.is_ok();
        f(Event::Set(&set_result(
            &set,
            outcome_of(verdict, Vec::new()),
        )));
        if accepted && matches!(budget, Budget::Buffer { .. }) {
            if first.overflowed() {
                let mut emit = |c: Change| f(Event::Change(c));
                let _ = run_mapper(&set, config, &mut changes::Changes::streaming(&mut emit));
            } else {
                first.drain(|change| f(Event::Change(change)));
            }
        }
        f(Event::SetEnd);
    }
    sets.finish()
}

/// A file's transaction sets one by one, for callers that map them on threads of
/// their own ([`map_set_streaming`]). Memory is one set's bytes; the envelope's
/// checks (counts in GE and IEA, trailers) run across sets, and
/// [`SetReader::finish`] gives their verdict with the file's ids.
pub struct SetReader<R> {
    reader: x12::StreamReader<R>,
    envelope: EnvelopeSummary,
}

impl<R: Read> SetReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            reader: x12::StreamReader::new(input),
            envelope: EnvelopeSummary::default(),
        }
    }

    /// The envelope once every set was read.
    pub fn finish(mut self) -> EnvelopeSummary {
        let report = self.reader.finish();
        add_report(&mut self.envelope, &report);
        self.envelope
    }
}

impl<R: Read> Iterator for SetReader<R> {
    type Item = x12::OwnedSet;

    fn next(&mut self) -> Option<x12::OwnedSet> {
        // A fatal read error ends the sets; it is in the envelope's report.
        let owned = self.reader.by_ref().find_map(Result::ok)?;
        note_interchange(&mut self.envelope, owned.interchange());
        self.envelope.sets += 1;
        Some(owned)
    }
}

/// Maps one set, handing each change to `sink` as the mapper makes it, and returns
/// the set's verdict. The changes come *before* the verdict, so this is only for a
/// caller that throws away a rejected set's output itself (`patient-access convert`
/// writes aside and deletes on any rejection); in return the set is mapped once,
/// in memory that does not grow with it, on whichever thread the caller likes.
pub fn map_set_streaming(
    owned: &x12::OwnedSet,
    config: &MappingConfig,
    sink: &mut dyn FnMut(Change),
) -> TransactionSetResult {
    match owned.parse() {
        Ok(set) => {
            let verdict = run_mapper(&set, config, &mut changes::Changes::streaming(sink));
            set_result(&set, outcome_of(verdict, Vec::new()))
        }
        Err(rejected) => map_result(Err(rejected), config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkStatus;

    fn config() -> MappingConfig {
        MappingConfig {
            payer_id: "999996666".into(),
            payer_name: "KEY INSURANCE COMPANY".into(),
            default_network_status: NetworkStatus::InNetwork,
        }
    }

    /// (set verdicts, changes) of a streaming conversion with `budget`.
    fn stream(bytes: &[u8], budget: Budget) -> (Vec<TransactionSetResult>, Vec<Change>) {
        let (mut sets, mut changes) = (Vec::new(), Vec::new());
        let summary = streaming(bytes, &config(), budget, |event| match event {
            Event::Set(s) => sets.push(s.clone()),
            Event::Change(c) => changes.push(c),
            Event::SetEnd => {}
        });
        assert!(!summary.rejects_everything);
        (sets, changes)
    }

    #[test]
    fn every_budget_hands_out_the_same_changes() {
        for bytes in [
            x12::generate::generate_837p(120, 1),
            x12::generate::generate_837i(60, 2),
            x12::generate::generate_835(80, 3),
            x12::generate::generate_834(90, 4),
        ] {
            let buffer = |bytes, expansion| Budget::Buffer { bytes, expansion };
            // Mapped once into a buffer that holds the whole set.
            let (sets, whole) = stream(&bytes, buffer(usize::MAX, 0));
            // Not even tried in the buffer (verdict pass, then emitting
            // pass), and a buffer that overflows partway through the set.
            for budget in [buffer(0, 1), buffer(bytes.len() * 3, 0)] {
                let (other_sets, changes) = stream(&bytes, budget);
                assert_eq!(other_sets, sets);
                assert_eq!(changes, whole, "{budget:?}");
            }
            let (verdicts, none) = stream(&bytes, Budget::VerdictOnly);
            assert_eq!(verdicts, sets);
            assert!(none.is_empty());
            // And they fold to what the in-memory conversion folds to.
            assert_eq!(fold(&whole), fold(convert(&bytes, &config()).changes()));
        }
    }

    #[test]
    fn sets_mapped_one_by_one_hand_out_what_the_stream_does() {
        for bytes in [
            x12::generate::generate_837p(120, 1),
            x12::generate::generate_835(80, 3),
            x12::generate::generate_834(90, 4),
        ] {
            let whole_set = Budget::Buffer {
                bytes: usize::MAX,
                expansion: 0,
            };
            let (sets, streamed) = stream(&bytes, whole_set);
            let mut reader = SetReader::new(&bytes[..]);
            let (mut verdicts, mut changes) = (Vec::new(), Vec::new());
            for owned in reader.by_ref() {
                verdicts.push(map_set_streaming(&owned, &config(), &mut |c| {
                    changes.push(c)
                }));
            }
            let envelope = reader.finish();
            assert!(!envelope.rejects_everything);
            assert_eq!(envelope.sets, sets.len());
            assert_eq!(verdicts, sets);
            assert_eq!(changes, streamed);
        }
    }

    #[test]
    fn a_rejected_set_hands_out_nothing_whatever_the_budget() {
        let good = String::from_utf8(x12::generate::generate_837p(30, 5)).unwrap_or_default();
        // A CLM05 without its frequency rejects the set (in the mapper).
        let bad = good.replacen("*11:B:1*", "*11*", 1);
        assert_ne!(bad, good);
        for budget in [
            Budget::Buffer {
                bytes: usize::MAX,
                expansion: 0,
            },
            Budget::Buffer {
                bytes: 0,
                expansion: 1,
            },
            Budget::VerdictOnly,
        ] {
            let (sets, changes) = stream(bad.as_bytes(), budget);
            assert!(
                matches!(sets[0].outcome, SetOutcome::Rejected { .. }),
                "{sets:?}"
            );
            assert!(changes.is_empty(), "{budget:?}");
        }
    }
}
