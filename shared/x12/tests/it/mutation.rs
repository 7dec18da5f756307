//! A deterministic mutation loop over the fixtures (a stable stand-in for
//! the cargo-fuzz target): thousands of corrupted inputs, none may panic.

use crate::support::fixtures;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

/// Interesting bytes: delimiters, line breaks, digits, letters, non-ASCII.
const BYTES: &[u8] = b"*~:^|>\r\n 019AZSEGHLNCM\x00\xff\xc3\xa9";

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len().max(1);
        let at = rng.below(len);
        match rng.below(7) {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b = BYTES[rng.below(BYTES.len())];
                }
            }
            1 => {
                let end = (at + rng.below(40)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 => {
                let end = (at + rng.below(200)).min(out.len());
                let chunk = out[at.min(end)..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, chunk);
            }
            3 => out.truncate(at),
            4 => out.insert(at.min(out.len()), BYTES[rng.below(BYTES.len())]),
            5 => {
                // Swap two lines (segments) to break order and counts.
                let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                let mut lines: Vec<Vec<u8>> = lines.into_iter().map(<[u8]>::to_vec).collect();
                lines.swap(a, b);
                out = lines.join(&b'\n');
            }
            _ => {
                if let Some(b) = out.get_mut(at) {
                    *b = b.wrapping_add(1 + rng.below(3) as u8);
                }
            }
        }
    }
    out
}

#[test]
fn thousands_of_mutated_inputs_never_panic() {
    let seeds = fixtures();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut totals = x12::walk::WalkStats::default();
    let rounds = 5000;
    for i in 0..rounds {
        let base = &seeds[i % seeds.len()];
        let input = mutate(base, &mut rng);
        let stats = x12::walk::walk_everything(&input);
        totals.accepted += stats.accepted;
        totals.rejected += stats.rejected;
        totals.envelope_errors += stats.envelope_errors;
    }
    // Both outcomes must actually occur, or the mutations are too weak/strong.
    assert!(totals.accepted > 0 && totals.rejected > 0, "{totals:?}");
}

#[test]
fn unmutated_fixtures_walk_cleanly() {
    for f in fixtures() {
        let stats = x12::walk::walk_everything(&f);
        // Each set is read twice (in memory and streamed).
        let sets = memchr::memmem::find_iter(&f, b"~\nST*").count();
        assert_eq!(
            (stats.accepted, stats.rejected, stats.envelope_errors),
            (2 * sets, 0, 0),
            "{}",
            String::from_utf8_lossy(&f[..f.len().min(300)])
        );
        assert!(stats.loops > 3);
    }
}
