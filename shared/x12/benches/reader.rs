//! Reader throughput on a generated 837P: full reader with envelope checks
//! and loop recognition versus a plain memchr segment + element split (the
//! practical upper bound for any reader of the same bytes).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Splits segments on `~` and elements on `*`, touching every element.
fn plain_split(bytes: &[u8]) -> usize {
    let mut elements = 0;
    for seg in bytes.split(|b| *b == b'~') {
        elements += memchr::memchr_iter(b'*', seg).count() + 1;
    }
    elements
}

/// Runs the reader and walks every claim's service lines.
fn reader_with_loops(bytes: &[u8]) -> usize {
    let Ok(reader) = x12::Reader::new(bytes) else {
        return 0;
    };
    let mut lines = 0;
    for set in reader.flatten() {
        for claim in set.loops("2300") {
            lines += claim.children_named("2400").count();
        }
    }
    lines
}

fn bench(c: &mut Criterion) {
    let bytes = x12::generate::generate_837p(10_000, 42);
    let mut group = c.benchmark_group("837p_10k_claims");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("memchr_split", |b| {
        b.iter(|| plain_split(black_box(&bytes)))
    });
    group.bench_function("reader_loops", |b| {
        b.iter(|| reader_with_loops(black_box(&bytes)))
    });
    group.bench_function("stream_reader_loops", |b| {
        b.iter(|| {
            let mut lines = 0;
            for owned in x12::StreamReader::new(black_box(bytes.as_slice())).flatten() {
                if let Ok(set) = owned.parse() {
                    lines += set.loops("2400").count();
                }
            }
            lines
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
