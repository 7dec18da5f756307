//! End-to-end conversion of a generated 837P (parse + loops + mapping + JSON
//! serialisation of every resource) against a plain memchr segment/element
//! split of the same bytes.
//!
//! `cargo bench -p edi-fhir --bench convert` (EDI_BENCH_CLAIMS sets the
//! claim count; the default, 40 000, is about 20 MB).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edi_fhir::{Action, Event, MappingConfig, NetworkStatus, SetOutcome};

fn config() -> MappingConfig {
    MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY INSURANCE COMPANY".into(),
        default_network_status: NetworkStatus::InNetwork,
    }
}

/// The baseline: find every segment and every element separator.
fn split(bytes: &[u8]) -> usize {
    let mut elements = 0;
    for segment in memchr::memchr_iter(b'~', bytes).scan(0, |start, end| {
        let s = bytes.get(*start..end);
        *start = end + 1;
        s
    }) {
        elements += memchr::memchr_iter(b'*', segment).count();
    }
    elements
}

/// Converts in bounded memory and serialises every resource as it comes.
fn convert_and_serialise(bytes: &[u8], config: &MappingConfig) -> (usize, usize) {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut written = 0;
    let mut claims = 0;
    edi_fhir::convert_streaming(bytes, config, |event| match event {
        Event::Set(set) => {
            if let SetOutcome::Accepted { claims: n, .. } = set.outcome {
                claims += n;
            }
        }
        Event::Change(change) => {
            if let Action::Merge(value) = change.action {
                out.clear();
                let _ = serde_json::to_writer(&mut out, &value);
                written += out.len();
            }
        }
        Event::SetEnd => {}
    });
    (written, claims)
}

fn bench(c: &mut Criterion) {
    let claims: usize = std::env::var("EDI_BENCH_CLAIMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    let bytes = x12::generate::generate_837p(claims, 42);
    let config = config();
    let mb = bytes.len() as f64 / 1e6;

    // One timed pass for a plain-language summary next to criterion's.
    let t = Instant::now();
    let elements = split(&bytes);
    let split_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (json_bytes, converted) = convert_and_serialise(&bytes, &config);
    let convert_s = t.elapsed().as_secs_f64();
    println!(
        "837P {mb:.1} MB, {converted} claims, {elements} elements, {:.1} MB JSON\n  split:   {:.0} MB/s\n  convert: {:.0} MB/s, {:.0} claims/s (end to end, JSON included), {:.1}x the split time",
        json_bytes as f64 / 1e6,
        mb / split_s,
        mb / convert_s,
        converted as f64 / convert_s,
        convert_s / split_s,
    );

    let mut group = c.benchmark_group("837p");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("memchr split", |b| {
        b.iter(|| black_box(split(black_box(&bytes))))
    });
    group.bench_function("convert + serialise", |b| {
        b.iter(|| black_box(convert_and_serialise(black_box(&bytes), &config)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
