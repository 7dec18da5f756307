//! End-to-end X12 → CARIN throughput against a plain memchr split, per
//! transaction kind, from files on disk, with peak memory.
//!
//! `cargo bench -p edi-fhir --bench convert`
//!
//! For each of 837P, 837I, 835, 834 and 278 it generates a realistic file (at
//! most 5,000 claims or members per ST..SE, one prior authorization per 278
//! ST..SE as UM systems send them; ten sets per GS, see
//! `x12::generate`) of 10 MB and of `EDI_BENCH_MB` MB (default 100), writes
//! it to a temporary file, and measures over the same bytes:
//!
//! - **split**: read the file in 1 MB chunks and find every segment
//!   terminator and element separator with memchr (the floor for any parser);
//! - **parse**: the `x12` crate alone, streaming the file and parsing each
//!   set (envelope checks, loop tree) without mapping it;
//! - **map**: `edi_fhir::verdicts`, parse and mapping without
//!   writing any JSON (so convert − map is the cost of the output);
//! - **convert**: `edi_fhir::stream_changes` from the file, i.e. parse +
//!   envelope checks + loops + mapping + JSON serialisation of every change,
//!   each change's JSON copied into an output buffer as a writer would;
//! - MB/s of X12 in, claims/s, the ratio convert time / split time, the JSON
//!   written, and the peak RSS of the conversion (Linux: `VmHWM` after
//!   resetting it through `/proc/self/clear_refs`; "n/a" elsewhere).
//!
//! Each conversion runs in a fresh process (the bench re-runs itself with
//! `EDI_BENCH_CHILD`), best of `EDI_BENCH_RUNS` (default 2); the split is
//! best of 3. `EDI_BENCH_KINDS=837P,835` limits the kinds (`EDI_BENCH_KINDS=278`
//! for prior authorizations alone; "claims/s" are then authorizations/s).

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use edi_fhir::{Action, Change, Event, MappingConfig, NetworkStatus, SetOutcome};

fn config() -> MappingConfig {
    MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY INSURANCE COMPANY".into(),
        default_network_status: NetworkStatus::InNetwork,
    }
}

type Generator = fn(usize, u64) -> Vec<u8>;

const KINDS: [(&str, Generator); 5] = [
    ("837P", x12::generate::generate_837p),
    ("837I", x12::generate::generate_837i),
    ("835", x12::generate::generate_835),
    ("834", x12::generate::generate_834),
    ("278", x12::generate::generate_278),
];

/// A file of about `mb` MB.
fn generate(generator: Generator, mb: f64) -> Vec<u8> {
    x12::generate::of_size(generator, mb).0
}

/// The baseline: every segment terminator, then every element separator in
/// the segment, over the file read in 1 MB chunks.
fn split(path: &PathBuf) -> (usize, usize) {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => panic!("{path:?}: {e}"),
    };
    let mut buf = vec![0u8; 1 << 20];
    let (mut segments, mut elements) = (0, 0);
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => panic!("{path:?}: {e}"),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        let mut start = 0;
        for end in memchr::memchr_iter(b'~', chunk) {
            let segment = chunk.get(start..end).unwrap_or_default();
            elements += memchr::memchr_iter(b'*', segment).count();
            segments += 1;
            start = end + 1;
        }
        elements += memchr::memchr_iter(b'*', chunk.get(start..).unwrap_or_default()).count();
    }
    (segments, elements)
}

/// The x12 crate alone: stream the file and parse every set (envelope
/// checks, segment positions, loop tree), no mapping. Returns the sets.
fn parse(path: &PathBuf) -> usize {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => panic!("{path:?}: {e}"),
    };
    let mut reader = x12::StreamReader::new(file);
    let mut sets = 0;
    for owned in reader.by_ref().flatten() {
        sets += usize::from(owned.parse().is_ok());
    }
    assert!(reader.finish().is_clean());
    sets
}

/// Parse and map every set without writing any JSON
/// (`edi_fhir::verdicts`): the conversion minus its output.
fn verdicts(path: &PathBuf, config: &MappingConfig) -> usize {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => panic!("{path:?}: {e}"),
    };
    let mut claims = 0;
    let summary = edi_fhir::verdicts(file, config, |set| {
        if let SetOutcome::Accepted { claims: n, .. } = set.outcome {
            claims += n;
        }
    });
    assert!(!summary.rejects_everything);
    claims
}

/// Appends the change's resource JSON to `out` (what a writer to S3 or a
/// store would do with it).
fn write_change(change: &Change, out: &mut Vec<u8>) {
    if let Action::Merge(resource) = &change.action {
        out.extend_from_slice(resource.json().as_bytes());
    }
}

/// Streams the file through the conversion. Returns (claims, JSON bytes,
/// changes).
fn convert(path: &PathBuf, config: &MappingConfig) -> (usize, usize, usize) {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => panic!("{path:?}: {e}"),
    };
    let mut out = Vec::with_capacity(64 * 1024);
    let (mut claims, mut written, mut changes) = (0, 0, 0);
    let summary = edi_fhir::stream_changes(file, config, |event| match event {
        Event::Set(set) => match &set.outcome {
            SetOutcome::Accepted { claims: n, .. } => claims += n,
            SetOutcome::Rejected { problems } => panic!("rejected: {problems:?}"),
        },
        Event::Change(change) => {
            changes += 1;
            out.clear();
            write_change(&change, &mut out);
            written += out.len();
        }
        Event::SetEnd => {}
    });
    assert!(!summary.rejects_everything, "{:?}", summary.file_problems);
    (claims, written, changes)
}

/// Resets the peak RSS (Linux); false where that is not possible.
fn reset_peak() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

/// `VmHWM` (peak RSS) in MB.
fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Seconds this (single-threaded) process has spent on a CPU (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// One conversion in a fresh process (so that no other run's heap counts in
/// its peak RSS): prints `seconds cpu_seconds claims json_bytes peak_mb`.
fn child(path: &str) {
    let path = PathBuf::from(path);
    let config = config();
    let can_reset = reset_peak();
    let cpu = cpu_seconds();
    let t = Instant::now();
    let (claims, json, _changes) = convert(&path, &config);
    let seconds = t.elapsed().as_secs_f64();
    let cpu = cpu.zip(cpu_seconds()).map_or(-1.0, |(a, b)| b - a);
    let peak = peak_mb().filter(|_| can_reset).unwrap_or(-1.0);
    println!("{seconds} {cpu} {claims} {json} {peak}");
}

/// Best of `runs` child conversions: (seconds, cpu seconds, claims, JSON
/// bytes, peak MB), negative when unknown.
fn measure(path: &std::path::Path, runs: usize) -> (f64, f64, usize, usize, f64) {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => panic!("current_exe: {e}"),
    };
    let mut best: Option<(f64, f64, usize, usize, f64)> = None;
    for _ in 0..runs.max(1) {
        let out = std::process::Command::new(&exe)
            .env("EDI_BENCH_CHILD", path)
            .output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!("child failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("child: {e}"),
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let [seconds, cpu, claims, json, peak] = f[..] else {
            panic!("child said {text:?}");
        };
        let run = (seconds, cpu, claims as usize, json as usize, peak);
        let peak = best.map_or(peak, |b| b.4.max(peak));
        if best.is_none_or(|b| run.0 < b.0) {
            best = Some(run);
        }
        if let Some(b) = best.as_mut() {
            b.4 = peak;
        }
    }
    best.unwrap_or((0.0, 0.0, 0, 0, -1.0))
}

fn main() {
    if let Ok(path) = std::env::var("EDI_BENCH_CHILD") {
        child(&path);
        return;
    }
    let big: f64 = std::env::var("EDI_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100.0);
    let runs: usize = std::env::var("EDI_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let only = std::env::var("EDI_BENCH_KINDS").unwrap_or_default();
    let dir = std::env::temp_dir();
    println!("best of {runs} runs, each in a fresh process; cpu MB/s counts on-CPU time only\n");
    println!(
        "{:<5} {:>7} {:>7} {:>10} {:>10} {:>8} {:>12} {:>8} {:>9} {:>6} {:>8} {:>9} {:>9}",
        "kind",
        "X12 MB",
        "claims",
        "split MB/s",
        "parse MB/s",
        "map MB/s",
        "convert MB/s",
        "cpu MB/s",
        "claims/s",
        "ratio",
        "JSON MB",
        "JSON MB/s",
        "peak RSS"
    );
    for (name, generator) in KINDS {
        if !only.is_empty() && !only.split(',').any(|k| k.eq_ignore_ascii_case(name)) {
            continue;
        }
        let mut sizes = vec![10.0_f64.min(big), big];
        sizes.dedup();
        for mb in sizes {
            let path = dir.join(format!("edi-bench-{}-{name}-{mb}.x12", std::process::id()));
            let len = {
                let bytes = generate(generator, mb);
                if let Err(e) = std::fs::write(&path, &bytes) {
                    panic!("{path:?}: {e}");
                }
                bytes.len()
            };
            let file_mb = len as f64 / 1e6;
            // The first read warms the page cache for everything after it.
            let _ = split(&path);
            let mut split_s = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                std::hint::black_box(split(&path));
                split_s = split_s.min(t.elapsed().as_secs_f64());
            }
            let mut parse_s = f64::MAX;
            for _ in 0..2 {
                let t = Instant::now();
                std::hint::black_box(parse(&path));
                parse_s = parse_s.min(t.elapsed().as_secs_f64());
            }
            let mut map_s = f64::MAX;
            let config = config();
            for _ in 0..2 {
                let t = Instant::now();
                std::hint::black_box(verdicts(&path, &config));
                map_s = map_s.min(t.elapsed().as_secs_f64());
            }
            let (convert_s, cpu_s, claims, json, peak) = measure(&path, runs);
            // The output's own cost: convert minus map.
            let json_rate = if convert_s > map_s {
                format!("{:.0}", json as f64 / 1e6 / (convert_s - map_s))
            } else {
                "n/a".to_owned()
            };
            let _ = std::fs::remove_file(&path);
            let peak = if peak < 0.0 {
                "n/a".to_owned()
            } else {
                format!("{peak:.0} MB")
            };
            let cpu = if cpu_s > 0.0 {
                format!("{:.1}", file_mb / cpu_s)
            } else {
                "n/a".to_owned()
            };
            println!(
                "{name:<5} {file_mb:>7.1} {claims:>7} {:>10.0} {:>10.0} {:>8.1} {:>12.1} {cpu:>8} {:>9.0} {:>5.0}x {:>8.0} {json_rate:>9} {peak:>9}",
                file_mb / split_s,
                file_mb / parse_s,
                file_mb / map_s,
                file_mb / convert_s,
                claims as f64 / convert_s,
                convert_s / split_s,
                json as f64 / 1e6,
            );
        }
    }
}
