//! The in-memory, zero-copy reader: an iterator of transaction sets over a
//! byte slice. Only one set's segment list is alive at a time, so memory is
//! the input plus one set.

use std::collections::VecDeque;

use crate::delimiters::{Delimiters, find_isa};
use crate::envelope::{Envelope, EnvelopeReport, RawSegment, Role, SetContext};
use crate::error::{ErrorKind, X12Error};
use crate::segment::{Step, next_segment};
use crate::transaction::{Limits, SetResult, parse_set};

/// Iterates the transaction sets of an X12 input held in memory.
///
/// Each item is `Ok(set)` or `Err(rejected)` for one ST..SE. Envelope errors
/// (GE/IEA counts and control numbers, missing trailers) are found as the
/// input is read and are available from [`Reader::envelope`] or
/// [`Reader::finish`]; an interchange-level error there rejects every set,
/// even ones already yielded as `Ok`.
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    delims: Delimiters,
    segments_read: usize,
    envelope: Envelope,
    pending: Option<Pending<'a>>,
    queue: VecDeque<SetResult<'a>>,
    done: bool,
    limits: Limits,
}

struct Pending<'a> {
    ctx: SetContext,
    segments: Vec<RawSegment<'a>>,
    bytes: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading; fails when the input is not X12 or its first ISA is
    /// unusable (an interchange-level rejection of the whole input).
    pub fn new(input: &'a [u8]) -> Result<Self, X12Error> {
        Self::with_limits(input, Limits::default())
    }

    /// Like [`Reader::new`] with explicit caps.
    pub fn with_limits(input: &'a [u8], limits: Limits) -> Result<Self, X12Error> {
        let start = find_isa(input)?;
        let delims = Delimiters::from_isa(input.get(start..).unwrap_or_default(), 1, start as u64)?;
        Ok(Self {
            input,
            pos: start,
            delims,
            segments_read: 0,
            envelope: Envelope::default(),
            pending: None,
            queue: VecDeque::new(),
            done: false,
            limits,
        })
    }

    /// Envelope errors found so far.
    pub fn envelope(&self) -> &EnvelopeReport {
        self.envelope.report()
    }

    /// Reads whatever is left and returns the envelope report.
    pub fn finish(mut self) -> EnvelopeReport {
        while self.next().is_some() {}
        self.envelope.into_report()
    }

    fn step(&mut self) {
        let span = match next_segment(self.input, self.pos, &self.delims, true) {
            Step::Segment(span) => span,
            Step::End | Step::NeedMore => return self.end(),
        };
        self.pos = span.next;
        self.segments_read += 1;
        if span.is_isa {
            let isa = self.input.get(span.start..).unwrap_or_default();
            match Delimiters::from_isa(isa, self.segments_read, span.start as u64) {
                Ok(d) => self.delims = d,
                Err(e) => return self.fatal(e),
            }
        }
        let raw = RawSegment {
            bytes: self.input.get(span.start..span.end).unwrap_or_default(),
            delims: self.delims,
            index_in_file: self.segments_read,
            byte_offset: span.start as u64,
        };
        self.dispatch(raw);
    }

    fn dispatch(&mut self, raw: RawSegment<'a>) {
        let role = Role::of(raw.id());
        if self.pending.is_some() && role.interrupts_set() {
            self.close(true);
        }
        match role {
            Role::Isa => self.envelope.isa(&raw),
            Role::Gs => self.envelope.gs(&raw),
            Role::Ge => self.envelope.ge(&raw),
            Role::Iea => self.envelope.iea(&raw),
            Role::St => {
                let ctx = self.envelope.st(&raw);
                self.pending = Some(Pending {
                    ctx,
                    segments: Vec::new(),
                    bytes: 0,
                });
                self.add(raw);
            }
            Role::Se | Role::Body if self.pending.is_some() => {
                self.add(raw);
                if role == Role::Se {
                    self.close(false);
                }
            }
            Role::Se | Role::Body => self.envelope.stray(&raw),
        }
    }

    fn add(&mut self, raw: RawSegment<'a>) {
        let limit = self.limits.max_set_bytes;
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        p.bytes += raw.bytes.len() + 1;
        if p.bytes <= limit {
            p.segments.push(raw);
        } else if !p
            .ctx
            .pre_errors
            .iter()
            .any(|e| e.kind == ErrorKind::SetTooLarge)
        {
            p.ctx.pre_errors.push(raw.error(
                ErrorKind::SetTooLarge,
                None,
                format!("transaction set exceeds the {limit} byte limit"),
            ));
        }
    }

    fn close(&mut self, truncated: bool) {
        if let Some(p) = self.pending.take() {
            let result = parse_set(&p.segments, p.ctx, truncated, &self.limits);
            self.queue.push_back(result);
        }
    }

    fn end(&mut self) {
        self.close(true);
        self.envelope
            .finish(self.segments_read + 1, self.input.len() as u64);
        self.done = true;
    }

    fn fatal(&mut self, e: X12Error) {
        self.close(true);
        self.envelope.fatal(e);
        self.done = true;
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = SetResult<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

/// Everything in one input: per-set outcomes and the envelope report.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// One entry per ST..SE, in input order.
    pub sets: Vec<SetResult<'a>>,
    /// Interchange and group errors.
    pub envelope: EnvelopeReport,
}

/// Reads a whole in-memory input (convenient for tests and small files; use
/// [`Reader`] to process one set at a time).
pub fn read(input: &[u8]) -> Result<Parsed<'_>, X12Error> {
    let mut reader = Reader::new(input)?;
    let sets: Vec<_> = reader.by_ref().collect();
    Ok(Parsed {
        sets,
        envelope: reader.finish(),
    })
}
