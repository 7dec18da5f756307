//! Peak heap of the ingest pipeline against file size: a measurement, not a check
//! that runs by default (it maps thousands of claims several times over):
//!
//! ```sh
//! cargo test -p edi-ingest --test it memory -- --ignored --nocapture
//! ```
//!
//! The heap is counted by a global allocator that delegates to the system's and
//! keeps the current and peak bytes in use; the store keeps nothing (every read
//! finds nothing, every write is dropped), so what is measured is the pipeline's
//! own memory: object, passes, channel, batches, report. Files with more and more
//! transaction sets of the same size must peak at about the same heap; for
//! comparison, the peak of reading and converting the whole file in memory (what
//! the pipeline did before streaming) is printed next to it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use edi_ingest::{FolderObjects, IngestOutcome, Ingestor, scenarios};

use crate::support::NullStore;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters
// are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are global: one measurement at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `f` and returns the peak heap above what was in use when it started.
async fn peak_of<F: std::future::Future>(f: F) -> (F::Output, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f.await;
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test -p edi-ingest --test it memory -- --ignored --nocapture"]
async fn peak_heap_does_not_grow_with_the_number_of_sets() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let objects = FolderObjects::new(dir.path());
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    let claims_per_set = 500;
    let mut peaks = Vec::new();
    println!("sets  file bytes  streamed peak  whole-file peak (before streaming)");
    for sets in [2, 8, 32] {
        let key = format!("inbox/{sets}.x12");
        let size = {
            let bytes = scenarios::several_large_sets(sets, claims_per_set, None);
            std::fs::write(dir.path().join(&key), &bytes).unwrap_or_else(|e| panic!("{e}"));
            bytes.len()
        };
        let ingestor = Ingestor::new(Arc::new(NullStore::default()), scenarios::config());
        let (outcome, streamed) = peak_of(ingestor.ingest_object(&objects, &key)).await;
        match outcome {
            Ok(IngestOutcome::Ingested(done)) => {
                assert_eq!(done.report.totals.sets_accepted, sets + 2, "{sets}");
            }
            other => panic!("{sets}: {other:?}"),
        }
        let path = dir.path().join("processed").join(format!("{sets}.x12"));
        let (_, whole) = peak_of(async {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let conversion = edi_fhir::convert(&bytes, &scenarios::mapping());
            conversion.transaction_sets.len()
        })
        .await;
        println!(
            "{sets:>4}  {size:>10}  {:>10} KiB  {:>10} KiB",
            streamed / 1024,
            whole / 1024
        );
        peaks.push(streamed);
    }
    // 16 times the sets, same heap (within noise: the channel's fill depends on
    // which side runs ahead, and the report keeps a line per set).
    let (first, last) = (peaks[0], peaks[peaks.len() - 1]);
    assert!(
        last < first + first / 2,
        "peak heap grew with the file: {peaks:?}"
    );
}

/// One set of more and more claims: the heap grows with the set, because one set
/// is mapped at a time and its bytes, its parse and its buffered changes are held
/// meanwhile. The pipeline's peak is that of `edi_fhir::stream_changes` alone
/// over the same bytes (printed next to it) plus a few MiB (batches, channel, the
/// set's resource ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test -p edi-ingest --test it memory -- --ignored --nocapture"]
async fn peak_heap_of_one_growing_set() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let objects = FolderObjects::new(dir.path());
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    println!("claims  file bytes  streamed peak  stream_changes alone  whole-file peak");
    for claims in [500, 1000, 4000] {
        let key = format!("inbox/{claims}.x12");
        let size = {
            let bytes = x12::generate::generate_837p(claims, 3);
            std::fs::write(dir.path().join(&key), &bytes).unwrap_or_else(|e| panic!("{e}"));
            bytes.len()
        };
        let ingestor = Ingestor::new(Arc::new(NullStore::default()), scenarios::config());
        let (outcome, streamed) = peak_of(ingestor.ingest_object(&objects, &key)).await;
        assert!(
            matches!(&outcome, Ok(o) if o.totals().claims == claims),
            "{outcome:?}"
        );
        let path = dir.path().join("processed").join(format!("{claims}.x12"));
        let (_, alone) = peak_of(async {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let mut changes = 0;
            edi_fhir::stream_changes(file, &scenarios::mapping(), |event| {
                if let edi_fhir::Event::Change(_) = event {
                    changes += 1;
                }
            });
            changes
        })
        .await;
        let (_, whole) = peak_of(async {
            let bytes = std::fs::read(&path).unwrap_or_default();
            edi_fhir::convert(&bytes, &scenarios::mapping())
                .transaction_sets
                .len()
        })
        .await;
        println!(
            "{claims:>6}  {size:>10}  {:>9} KiB  {:>19} KiB  {:>11} KiB",
            streamed / 1024,
            alone / 1024,
            whole / 1024
        );
    }
}
