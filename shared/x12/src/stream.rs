//! Bounded-memory reading from any `std::io::Read`.
//!
//! The stream reader keeps at most one partial segment plus one read chunk
//! in its input buffer, and copies the current transaction set's segments
//! into an owned buffer capped by [`Limits::max_set_bytes`]. Each complete set
//! is handed out as an [`OwnedSet`], which the caller parses (borrowing from
//! it) with [`OwnedSet::parse`]; envelope checks run here, across sets.

use std::collections::VecDeque;
use std::io::{ErrorKind as IoKind, Read};

use crate::delimiters::{Delimiters, ISA_LEN, find_isa};
use crate::envelope::{EnvelopeReport, RawSegment, SetContext};
use crate::error::{ErrorKind, Position, X12Error};
use crate::segment::{Step, next_segment};
use crate::split::{Closed, SetBuffer, Splitter};
use crate::transaction::{Limits, SetResult, parse_set};

/// Bytes asked of the source per read.
const CHUNK: usize = 64 * 1024;

/// One transaction set's bytes, owned, ready to parse.
#[derive(Debug, Clone)]
pub struct OwnedSet {
    copy: SetCopy,
    ctx: SetContext,
    truncated: bool,
    limits: Limits,
}

/// A set's segments copied out of the input buffer.
#[derive(Debug, Clone)]
struct SetCopy {
    bytes: Vec<u8>,
    /// (start, end, index in file, byte offset in file) per segment.
    spans: Vec<(usize, usize, usize, u64)>,
    delims: Delimiters,
}

impl SetBuffer<'_> for SetCopy {
    fn push(&mut self, raw: RawSegment<'_>) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(raw.bytes);
        self.spans
            .push((at, at + raw.bytes.len(), raw.index_in_file, raw.byte_offset));
        self.bytes.push(self.delims.segment);
    }

    fn segments(&self) -> usize {
        self.spans.len()
    }

    /// The set is rejected; its copy would only hold memory.
    fn overflowed(&mut self) {
        self.bytes = Vec::new();
        self.spans = Vec::new();
    }
}

impl OwnedSet {
    /// Parses the set; segments borrow from `self`.
    pub fn parse(&self) -> SetResult<'_> {
        let raws: Vec<RawSegment<'_>> = self
            .copy
            .spans
            .iter()
            .map(|&(start, end, index_in_file, byte_offset)| RawSegment {
                bytes: self.copy.bytes.get(start..end).unwrap_or_default(),
                delims: self.copy.delims,
                index_in_file,
                byte_offset,
            })
            .collect();
        parse_set(&raws, self.ctx.clone(), self.truncated, &self.limits)
    }

    /// The ISA header of the interchange the set is in.
    pub fn interchange(&self) -> &crate::envelope::InterchangeHeader {
        &self.ctx.interchange
    }

    /// Size of the buffered segments in bytes.
    pub fn len(&self) -> usize {
        self.copy.bytes.len()
    }

    /// True when no segment was buffered.
    pub fn is_empty(&self) -> bool {
        self.copy.bytes.is_empty()
    }
}

/// Reads transaction sets from a byte stream in bounded memory.
///
/// Items are `Ok(OwnedSet)` per transaction set, or `Err` once for a fatal
/// error (unreadable ISA, I/O error, unterminated huge segment outside a
/// set) after which the iterator ends. Envelope errors are in
/// [`StreamReader::envelope`] / [`StreamReader::finish`].
pub struct StreamReader<R> {
    source: R,
    /// Read target, allocated once (zeroing a fresh chunk per read would
    /// cost O(chunk) even for tiny reads).
    scratch: Box<[u8]>,
    buf: Vec<u8>,
    pos: usize,
    buf_offset: u64,
    eof: bool,
    delims: Option<Delimiters>,
    segments_read: usize,
    splitter: Splitter<SetCopy>,
    queue: VecDeque<Result<OwnedSet, X12Error>>,
    done: bool,
    discarding: bool,
    limits: Limits,
}

impl<R: Read> StreamReader<R> {
    /// Wraps a source with default [`Limits`].
    pub fn new(source: R) -> Self {
        Self::with_limits(source, Limits::default())
    }

    /// Wraps a source with explicit caps.
    pub fn with_limits(source: R, limits: Limits) -> Self {
        Self {
            source,
            scratch: vec![0; CHUNK].into_boxed_slice(),
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            buf_offset: 0,
            eof: false,
            delims: None,
            segments_read: 0,
            splitter: Splitter::new(limits.max_set_bytes),
            queue: VecDeque::new(),
            done: false,
            discarding: false,
            limits,
        }
    }

    /// Envelope errors found so far.
    pub fn envelope(&self) -> &EnvelopeReport {
        self.splitter.envelope.report()
    }

    /// Reads the rest of the input and returns the envelope report.
    pub fn finish(mut self) -> EnvelopeReport {
        while self.next().is_some() {}
        self.splitter.envelope.into_report()
    }

    fn step(&mut self) {
        if self.discarding {
            return self.discard();
        }
        let Some(delims) = self.delims else {
            return self.start();
        };
        match next_segment(&self.buf, self.pos, &delims, self.eof) {
            Step::Segment(span) => {
                self.pos = span.next;
                self.segments_read += 1;
                let offset = self.buf_offset + span.start as u64;
                if span.is_isa {
                    let isa = self.buf.get(span.start..).unwrap_or_default();
                    match Delimiters::from_isa(isa, self.segments_read, offset) {
                        Ok(d) => self.delims = Some(d),
                        Err(e) => return self.fatal(e),
                    }
                }
                self.dispatch(span.start, span.end, offset);
            }
            Step::End => self.end(),
            Step::NeedMore => {
                if self.partial_too_large(&delims) {
                    return;
                }
                self.fill();
            }
        }
    }

    /// Finds the first ISA and its delimiters.
    fn start(&mut self) {
        while !self.eof && self.buf.len() < 4 * ISA_LEN {
            if !self.fill() {
                return;
            }
        }
        let found = find_isa(&self.buf).and_then(|at| {
            let isa = self.buf.get(at..).unwrap_or_default();
            Delimiters::from_isa(isa, 1, at as u64).map(|d| (at, d))
        });
        match found {
            Ok((at, d)) => {
                self.pos = at;
                self.delims = Some(d);
            }
            Err(e) => self.fatal(e),
        }
    }

    fn dispatch(&mut self, start: usize, end: usize, offset: u64) {
        let Some(delims) = self.delims else {
            return;
        };
        let raw = RawSegment {
            bytes: self.buf.get(start..end).unwrap_or_default(),
            delims,
            index_in_file: self.segments_read,
            byte_offset: offset,
        };
        let open = || SetCopy {
            bytes: Vec::new(),
            spans: Vec::new(),
            delims,
        };
        if let Some(closed) = self.splitter.dispatch(raw, open) {
            self.hand_out(closed);
        }
    }

    fn close(&mut self, truncated: bool) {
        if let Some(closed) = self.splitter.close(truncated) {
            self.hand_out(closed);
        }
    }

    fn hand_out(&mut self, closed: Closed<SetCopy>) {
        let Closed { set, truncated } = closed;
        self.queue.push_back(Ok(OwnedSet {
            copy: set.buffer,
            ctx: set.ctx,
            truncated,
            limits: self.limits,
        }));
    }

    /// Detects an unterminated segment or element that outgrows the caps
    /// before more input is buffered for it.
    fn partial_too_large(&mut self, delims: &Delimiters) -> bool {
        let partial = self.buf.get(self.pos..).unwrap_or_default();
        let last_element = partial
            .iter()
            .rposition(|b| *b == delims.element)
            .map_or(partial.len(), |i| partial.len() - i - 1);
        let (kind, reason) = if last_element > self.limits.max_element_bytes {
            (
                ErrorKind::ElementTooLong,
                format!(
                    "an element exceeds the {} byte limit",
                    self.limits.max_element_bytes
                ),
            )
        } else if partial.len() > self.limits.max_set_bytes {
            (
                ErrorKind::SetTooLarge,
                format!(
                    "a segment exceeds the {} byte limit",
                    self.limits.max_set_bytes
                ),
            )
        } else {
            return false;
        };
        let e = X12Error::new(
            kind,
            Position {
                segment_in_file: self.segments_read + 1,
                byte_offset: self.buf_offset + self.pos as u64,
                segment_id: String::from_utf8_lossy(partial.get(..3).unwrap_or_default())
                    .into_owned(),
                ..Position::default()
            },
            reason,
        );
        match self.splitter.pending_mut() {
            Some(p) => {
                p.ctx.pre_errors.push(e);
                p.ctx.skipped_segments += 1;
                self.segments_read += 1;
                self.discarding = true;
                self.compact_to(self.buf.len());
            }
            None => self.fatal(e),
        }
        true
    }

    /// Skips input up to the next segment terminator (after a cap error).
    fn discard(&mut self) {
        let Some(delims) = self.delims else {
            return self.fatal_eof();
        };
        match memchr::memchr(delims.segment, self.buf.get(self.pos..).unwrap_or_default()) {
            Some(i) => {
                self.pos += i + 1;
                self.discarding = false;
            }
            None if self.eof => self.end(),
            None => {
                self.compact_to(self.buf.len());
                self.fill();
            }
        }
    }

    fn fatal_eof(&mut self) {
        self.done = true;
    }

    /// Drops consumed bytes, keeping the buffer small.
    fn compact_to(&mut self, upto: usize) {
        let upto = upto.min(self.buf.len());
        self.buf.drain(..upto);
        self.buf_offset += upto as u64;
        self.pos = self.pos.saturating_sub(upto);
    }

    /// Reads one chunk. Returns false on a fatal I/O error.
    fn fill(&mut self) -> bool {
        if self.pos > 0 {
            self.compact_to(self.pos);
        }
        let old = self.buf.len();
        loop {
            match self.source.read(&mut self.scratch) {
                Ok(n) => {
                    self.buf
                        .extend_from_slice(self.scratch.get(..n).unwrap_or_default());
                    self.eof = n == 0;
                    return true;
                }
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(e) => {
                    let err = X12Error::new(
                        ErrorKind::Io,
                        Position {
                            segment_in_file: self.segments_read + 1,
                            byte_offset: self.buf_offset + old as u64,
                            ..Position::default()
                        },
                        format!("reading the input failed: {e}"),
                    );
                    self.fatal(err);
                    return false;
                }
            }
        }
    }

    fn end(&mut self) {
        self.close(true);
        let at = self.buf_offset + self.buf.len() as u64;
        self.splitter.envelope.finish(self.segments_read + 1, at);
        self.done = true;
    }

    fn fatal(&mut self, e: X12Error) {
        self.close(true);
        self.splitter.envelope.fatal(e.clone());
        self.queue.push_back(Err(e));
        self.done = true;
    }
}

impl<R: Read> Iterator for StreamReader<R> {
    type Item = Result<OwnedSet, X12Error>;

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
