//! Exhaustive traversal of everything the readers expose, used by the fuzz
//! target and the mutation test: whatever the input, reading and walking
//! must terminate without panicking.

use std::io::Read;

use crate::loops::Loop;
use crate::reader::Reader;
use crate::stream::StreamReader;
use crate::transaction::{Limits, TransactionSet};

/// Counts gathered while walking, so the work cannot be optimised away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Accepted sets.
    pub accepted: usize,
    /// Rejected sets.
    pub rejected: usize,
    /// Loops visited.
    pub loops: usize,
    /// Elements and components visited.
    pub values: usize,
    /// Envelope errors.
    pub envelope_errors: usize,
}

/// Reads `data` with the in-memory reader and with the stream reader (small
/// caps, odd read sizes) and touches every loop, element and component.
pub fn walk_everything(data: &[u8]) -> WalkStats {
    let mut stats = WalkStats::default();
    if let Ok(mut reader) = Reader::new(data) {
        for set in reader.by_ref() {
            walk_result(set, &mut stats);
        }
        stats.envelope_errors += reader.finish().errors.len();
    }
    let limits = Limits {
        max_set_bytes: 4096,
        max_element_bytes: 256,
        max_errors_per_set: 8,
    };
    let mut stream = StreamReader::with_limits(Uneven { data, step: 0 }, limits);
    for owned in stream.by_ref().flatten() {
        walk_result(owned.parse(), &mut stats);
    }
    stats.envelope_errors += stream.finish().errors.len();
    stats
}

fn walk_result(set: crate::transaction::SetResult<'_>, stats: &mut WalkStats) {
    match set {
        Ok(set) => {
            stats.accepted += 1;
            walk_set(&set, stats);
        }
        Err(rejected) => {
            stats.rejected += 1;
            stats.values += rejected.to_string().len().min(1);
        }
    }
}

fn walk_set(set: &TransactionSet<'_>, stats: &mut WalkStats) {
    let root = set.root();
    walk_loop(root, stats);
    for l in root.descendants() {
        stats.loops += 1;
        let _ = (
            l.parent(),
            l.ancestor("2000B"),
            l.trigger(),
            l.all_segments().len(),
        );
        walk_loop(l, stats);
    }
    for seg in set.segments() {
        let _ = set.loop_of(seg).id();
        for n in 0..=seg.element_count() + 1 {
            let _ = (seg.date(n), seg.decimal(n), seg.period(n));
            stats.values += seg.repetitions(n).count();
            if let Some(c) = seg.composite(n) {
                stats.values += c.components().count();
                let _ = c.component(0);
            }
        }
    }
}

fn walk_loop(l: Loop<'_, '_>, stats: &mut WalkStats) {
    stats.values += l.segments().count();
    stats.loops += l.children().count();
}

/// A reader returning 1, 2, 3... bytes per call to shake out buffering bugs.
struct Uneven<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Uneven<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 97 + 1;
        let n = self.step.min(buf.len()).min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        if let Some(dst) = buf.get_mut(..n) {
            dst.copy_from_slice(head);
        }
        self.data = tail;
        Ok(n)
    }
}
