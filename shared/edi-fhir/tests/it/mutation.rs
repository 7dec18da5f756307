//! Thousands of corrupted fixtures through every mapper and the merge rule:
//! nothing may panic (a stable stand-in for the cargo-fuzz targets).

use std::path::PathBuf;

use edi_fhir::{MappingConfig, NetworkStatus, apply, convert};

use crate::support::streamed;

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

/// Bytes that matter to X12 and to the mappers (delimiters, digits, signs,
/// qualifiers' letters, non-ASCII).
const BYTES: &[u8] = b"*~:^|>\r\n 0189-.ABDFKMPRSXZ\x00\xff\xc3";

fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len().max(1));
        match rng.below(5) {
            0 => {
                if let Some(b) = out.get_mut(at) {
                    *b = BYTES[rng.below(BYTES.len())];
                }
            }
            1 => {
                let end = (at + rng.below(30)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 => {
                let end = (at + rng.below(120)).min(out.len());
                let chunk = out.get(at.min(end)..end).unwrap_or_default().to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, chunk);
            }
            3 => out.insert(at.min(out.len()), BYTES[rng.below(BYTES.len())]),
            _ => {
                if let Some(b) = out.get_mut(at) {
                    *b = b.wrapping_add(1);
                }
            }
        }
    }
    out
}

#[test]
fn mutated_fixtures_never_panic_the_mappers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../x12/tests/fixtures");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.push(x12::generate::generate_837i(5, 1));
    seeds.push(x12::generate::generate_837d(5, 2));
    seeds.push(x12::generate::generate_835(5, 3));
    seeds.push(x12::generate::generate_834(5, 4));
    assert!(seeds.len() >= 10);
    let config = MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY".into(),
        default_network_status: NetworkStatus::OutOfNetwork,
    };
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    for round in 0..3000 {
        let seed = &seeds[round % seeds.len()];
        let input = mutate(seed, &mut rng);
        let conversion = convert(&input, &config);
        if round % 10 == 0 {
            assert_eq!(streamed(input.as_slice(), &config), conversion);
        }
        let mut store = std::collections::BTreeMap::new();
        for change in conversion.changes() {
            accepted += 1;
            assert!(fhir::is_valid_id(&change.id), "{}", change.id);
            let key = (change.resource_type, change.id.clone());
            if let Some(next) = apply(store.get(&key), change) {
                store.insert(key, next);
            }
        }
    }
    assert!(accepted > 0, "no mutated input was accepted at all");
}
