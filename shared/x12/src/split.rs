//! Set-splitting shared by the in-memory [`crate::reader::Reader`] and the
//! [`crate::stream::StreamReader`]: each segment is routed by its envelope
//! role, a set's segments are buffered under [`Limits::max_set_bytes`], and a
//! set is closed by its SE or, truncated, by an envelope segment that
//! interrupts it. The readers differ only in how they hold a set's segments
//! (borrowed or copied), which [`SetBuffer`] abstracts.

use crate::envelope::{Envelope, RawSegment, Role, SetContext};
use crate::error::ErrorKind;

/// Where a reader keeps the segments of the set being read.
pub(crate) trait SetBuffer<'a> {
    /// Keeps one segment (already known to fit under the cap).
    fn push(&mut self, raw: RawSegment<'a>);
    /// Number of segments kept.
    fn segments(&self) -> usize;
    /// The set outgrew the cap: nothing more will be kept, so a buffer that
    /// owns its bytes may free them.
    fn overflowed(&mut self) {}
}

/// A set being read: its envelope context, its segments, and its size
/// counted as the bytes of its segments with their terminators.
pub(crate) struct Pending<B> {
    pub ctx: SetContext,
    pub buffer: B,
    bytes: usize,
}

/// A set the splitter has closed; `truncated` when no SE ended it.
pub(crate) struct Closed<B> {
    pub set: Pending<B>,
    pub truncated: bool,
}

/// The envelope checks plus the set being read.
pub(crate) struct Splitter<B> {
    pub envelope: Envelope,
    pending: Option<Pending<B>>,
    max_set_bytes: usize,
}

impl<'a, B: SetBuffer<'a>> Splitter<B> {
    pub fn new(max_set_bytes: usize) -> Self {
        Self {
            envelope: Envelope::default(),
            pending: None,
            max_set_bytes,
        }
    }

    /// The set being read, if any (for errors a reader finds outside the
    /// splitter, such as an oversized unterminated segment).
    pub fn pending_mut(&mut self) -> Option<&mut Pending<B>> {
        self.pending.as_mut()
    }

    /// Routes one segment. An ST opens a set with the buffer `open` makes.
    /// Returns the set this segment closed, if any: at most one, since only
    /// an interrupting segment or an SE closes one and no segment is both.
    pub fn dispatch(&mut self, raw: RawSegment<'a>, open: impl FnOnce() -> B) -> Option<Closed<B>> {
        let role = Role::of(raw.id());
        let mut closed = None;
        if role.interrupts_set() {
            closed = self.close(true);
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
                    buffer: open(),
                    bytes: 0,
                });
                self.add(raw);
            }
            Role::Se | Role::Body if self.pending.is_some() => {
                self.add(raw);
                if role == Role::Se {
                    closed = self.close(false);
                }
            }
            Role::Se | Role::Body => self.envelope.stray(&raw),
        }
        closed
    }

    /// Takes the set being read, if any.
    pub fn close(&mut self, truncated: bool) -> Option<Closed<B>> {
        self.pending.take().map(|set| Closed { set, truncated })
    }

    /// Keeps a segment unless the set would exceed the cap; the first
    /// segment past it records one error, which rejects the set.
    fn add(&mut self, raw: RawSegment<'a>) {
        let limit = self.max_set_bytes;
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        p.bytes += raw.bytes.len() + 1;
        if p.bytes <= limit {
            p.buffer.push(raw);
        } else if !p
            .ctx
            .pre_errors
            .iter()
            .any(|e| e.kind == ErrorKind::SetTooLarge)
        {
            let mut e = raw.error(
                ErrorKind::SetTooLarge,
                None,
                format!("transaction set exceeds the {limit} byte limit"),
            );
            e.position.segment_in_set = Some(p.buffer.segments() + 1);
            p.ctx.pre_errors.push(e);
            p.buffer.overflowed();
        }
    }
}
