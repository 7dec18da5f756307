//! Failures in the middle of the streaming apply pass: the store gives up while the
//! conversion thread is blocked on a full channel.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use edi_ingest::{FolderObjects, IngestError, Ingestor, scenarios};
use fhir_store::StoreError;

use crate::support::NullStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_mid_file_stops_the_conversion_and_fails_retryably() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    let bytes = scenarios::several_large_sets(3, 100, None);
    std::fs::write(dir.path().join("inbox/a.x12"), &bytes).unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(NullStore::failing_after(50));
    // Batches of 8: the converter runs far ahead and blocks on the full channel
    // when the writer fails.
    let mut config = scenarios::config();
    config.batch_changes = 8;
    let ingestor = Ingestor::new(Arc::clone(&store), config);
    let objects = FolderObjects::new(dir.path());
    let outcome = ingestor.ingest_object(&objects, "inbox/a.x12").await;
    match outcome {
        Err(
            e @ IngestError::Store {
                source: StoreError::Backend(_),
                ..
            },
        ) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    // The writer stopped at its first failing batch; the claim is released for the
    // retry; the file stays where it was, with no report.
    let writes = store.writes.load(Ordering::Relaxed);
    assert!((50..=50 + 8).contains(&writes), "{writes} writes");
    assert_eq!(store.ledger_len(), 0, "the claim is released");
    assert!(dir.path().join("inbox/a.x12").is_file());
    assert!(!dir.path().join("processed").exists() && !dir.path().join("rejected").exists());
}
