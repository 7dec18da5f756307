//! The in-memory, zero-copy reader: an iterator of transaction sets over a
//! byte slice. Only one set's segment list is alive at a time, so memory is
//! the input plus one set.

use std::collections::VecDeque;

use crate::delimiters::{Delimiters, find_isa};
use crate::envelope::{EnvelopeReport, RawSegment};
use crate::error::X12Error;
use crate::segment::{Step, next_segment};
use crate::split::{Closed, SetBuffer, Splitter};
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
    splitter: Splitter<Vec<RawSegment<'a>>>,
    queue: VecDeque<SetResult<'a>>,
    done: bool,
    limits: Limits,
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
            splitter: Splitter::new(limits.max_set_bytes),
            queue: VecDeque::new(),
            done: false,
            limits,
        })
    }

    /// Envelope errors found so far.
    pub fn envelope(&self) -> &EnvelopeReport {
        self.splitter.envelope.report()
    }

    /// Reads whatever is left and returns the envelope report.
    pub fn finish(mut self) -> EnvelopeReport {
        while self.next().is_some() {}
        self.splitter.envelope.into_report()
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
        if let Some(closed) = self.splitter.dispatch(raw, Vec::new) {
            self.parse(closed);
        }
    }

    fn close(&mut self, truncated: bool) {
        if let Some(closed) = self.splitter.close(truncated) {
            self.parse(closed);
        }
    }

    fn parse(&mut self, closed: Closed<Vec<RawSegment<'a>>>) {
        let Closed { set, truncated } = closed;
        let result = parse_set(&set.buffer, set.ctx, truncated, &self.limits);
        self.queue.push_back(result);
    }

    fn end(&mut self) {
        self.close(true);
        self.splitter
            .envelope
            .finish(self.segments_read + 1, self.input.len() as u64);
        self.done = true;
    }

    fn fatal(&mut self, e: X12Error) {
        self.close(true);
        self.splitter.envelope.fatal(e);
        self.done = true;
    }
}

/// The in-memory reader keeps a set's segments as borrowed slices.
impl<'a> SetBuffer<'a> for Vec<RawSegment<'a>> {
    fn push(&mut self, raw: RawSegment<'a>) {
        Vec::push(self, raw);
    }

    fn segments(&self) -> usize {
        self.len()
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
