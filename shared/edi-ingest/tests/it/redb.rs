//! The ingest scenarios against the embedded redb store, plus the golden report and
//! 999 of the mixed good/bad file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edi_ingest::ack::{AckEnvelope, generate_999};
use edi_ingest::{
    Disposition, FileStatus, FolderObjects, IngestError, IngestOutcome, Ingestor, ObjectError,
    ObjectStore, StoredObject, scenarios,
};
use store_redb::RedbStore;

fn store(dir: &tempfile::TempDir, name: &str) -> Arc<RedbStore> {
    Arc::new(RedbStore::open(dir.path().join(name)).unwrap_or_else(|e| panic!("open: {e}")))
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
}

#[tokio::test]
async fn every_fixture_twice_is_a_no_op() {
    let d = dir();
    scenarios::every_fixture_twice_is_a_no_op(store(&d, "s.redb")).await;
}

#[tokio::test]
async fn prior_authorization_pended_then_approved() {
    let d = dir();
    scenarios::prior_authorization_pended_then_approved(store(&d, "pa.redb")).await;
}

#[tokio::test]
async fn crash_mid_file_then_rerun_matches_a_clean_run() {
    let d = dir();
    scenarios::crash_mid_file_then_rerun_matches_a_clean_run(
        store(&d, "a.redb"),
        store(&d, "b.redb"),
    )
    .await;
}

#[tokio::test]
async fn a_fresh_claim_is_busy() {
    let d = dir();
    scenarios::a_fresh_claim_is_busy(store(&d, "s.redb")).await;
}

#[tokio::test]
async fn bad_inputs_are_rejected_and_store_nothing() {
    let d = dir();
    scenarios::bad_inputs_are_rejected_and_store_nothing(store(&d, "s.redb")).await;
}

#[tokio::test]
async fn base_5010_is_applied_with_a_warning() {
    let d = dir();
    scenarios::base_5010_is_applied_with_a_warning(store(&d, "s.redb")).await;
}

#[tokio::test]
async fn good_set_applied_bad_set_reported_with_golden_report_and_999() {
    let d = dir();
    let done = scenarios::good_set_applied_bad_set_reported(store(&d, "s.redb")).await;
    golden("mixed.report.json", &done.report.to_json());
    let fixed = AckEnvelope {
        sender_id: "RECEIVERID".into(),
        receiver_id: "SUBMITTERID".into(),
        date: "20240116".into(),
        time: "0830".into(),
        control_number: 1,
        production: false,
    };
    let conversion = edi_fhir::convert(&scenarios::one_good_one_bad(), &scenarios::mapping());
    golden(
        "mixed.999",
        &generate_999(&conversion, &fixed).unwrap_or_default(),
    );
}

#[tokio::test]
async fn the_inbox_moves_files_and_writes_outputs_next_to_them() {
    let d = dir();
    let root = d.path().join("data");
    let bytes = scenarios::FIXTURES[0].1;
    std::fs::create_dir_all(root.join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("inbox/a.x12"), bytes).unwrap_or_else(|e| panic!("{e}"));
    let objects = FolderObjects::new(&root);
    let store = store(&d, "s.redb");
    let ingestor = edi_ingest::Ingestor::new(Arc::clone(&store), scenarios::config());
    let outcome = ingestor.ingest_object(&objects, "inbox/a.x12").await;
    assert!(outcome.is_ok(), "{outcome:?}");
    for name in [
        "processed/a.x12",
        "processed/a.x12.json",
        "processed/a.x12.999",
    ] {
        assert!(root.join(name).is_file(), "{name} missing");
    }
    assert!(!root.join("inbox/a.x12").exists());
    // The same bytes dropped in again are recognised and moved without re-applying.
    std::fs::write(root.join("inbox/b.x12"), bytes).unwrap_or_else(|e| panic!("{e}"));
    let again = ingestor.ingest_object(&objects, "inbox/b.x12").await;
    assert!(
        matches!(again, Ok(edi_ingest::IngestOutcome::AlreadyDone { .. })),
        "{again:?}"
    );
    assert!(root.join("processed/b.x12").is_file());
    // A bad file goes to rejected/ with its report.
    std::fs::write(root.join("inbox/trunc.x12"), b"ISA*00*").unwrap_or_else(|e| panic!("{e}"));
    let rejected = ingestor.ingest_object(&objects, "inbox/trunc.x12").await;
    assert!(
        matches!(&rejected, Ok(o) if o.disposition() == edi_ingest::Disposition::Rejected),
        "{rejected:?}"
    );
    assert!(root.join("rejected/trunc.x12.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_file_with_several_large_sets_streams_to_the_in_memory_result() {
    let d = dir();
    let root = d.path().join("data");
    let bytes = scenarios::several_large_sets(4, 150, Some(2));
    assert!(bytes.len() > 4 * 64 * 1024, "{} bytes", bytes.len());
    std::fs::create_dir_all(root.join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("inbox/big.x12"), &bytes).unwrap_or_else(|e| panic!("{e}"));
    let objects = FolderObjects::new(&root);
    let done = scenarios::streamed_object_matches_in_memory(
        store(&d, "a.redb"),
        store(&d, "b.redb"),
        &objects,
        "inbox/big.x12",
        &bytes,
    )
    .await;
    let report = &done.report;
    assert_eq!(
        report.status,
        FileStatus::PartiallyAccepted,
        "{}",
        report.to_json()
    );
    let accepted: Vec<bool> = report.transaction_sets.iter().map(|s| s.accepted).collect();
    assert_eq!(
        accepted,
        [true, true, false, true, true, true],
        "{}",
        report.to_json()
    );
    assert!(root.join("processed/big.x12.json").is_file());
}

#[tokio::test]
async fn a_folder_file_over_the_cap_is_refused_with_a_report_and_not_claimed() {
    let d = dir();
    let root = d.path().join("data");
    let bytes = scenarios::FIXTURES[0].1;
    std::fs::create_dir_all(root.join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("inbox/big.x12"), bytes).unwrap_or_else(|e| panic!("{e}"));
    let objects = FolderObjects::new(&root);
    let store = store(&d, "s.redb");
    let mut config = scenarios::config();
    config.max_file_bytes = bytes.len() - 1;
    let ingestor = Ingestor::new(Arc::clone(&store), config);
    let outcome = ingestor.ingest_object(&objects, "inbox/big.x12").await;
    let Ok(IngestOutcome::Ingested(done)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(done.report.status, FileStatus::Rejected);
    assert_eq!(done.report.file_problems[0].code, "024");
    assert!(done.ack.is_none());
    let report = std::fs::read_to_string(root.join("rejected/big.x12.json"))
        .unwrap_or_else(|e| panic!("the report: {e}"));
    assert!(report.contains("\"code\": \"024\""), "{report}");
    assert!(root.join("rejected/big.x12").is_file());
    assert!(scenarios::versions(store.as_ref(), bytes).await.is_empty());
    let identity = edi_ingest::FileIdentity::content("any", bytes);
    let entry = fhir_store::KeyValueStore::get(
        store.as_ref(),
        edi_ingest::ledger::NAMESPACE,
        identity.ledger_key(),
    )
    .await;
    assert!(
        matches!(entry, Ok(None)),
        "refused files are not in the ledger: {entry:?}"
    );
}

/// A folder whose files are rewritten in place right after `get` opened them.
struct RewrittenAfterOpen {
    inner: FolderObjects,
    root: PathBuf,
    replacement: Vec<u8>,
}

impl ObjectStore for RewrittenAfterOpen {
    async fn get(&self, key: &str, max_bytes: usize) -> Result<StoredObject, ObjectError> {
        let object = self.inner.get(key, max_bytes).await?;
        // Same inode: truncate and write, as `cp` onto an existing file does.
        std::fs::write(self.root.join(key), &self.replacement).unwrap_or_else(|e| panic!("{e}"));
        Ok(object)
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Result<(), ObjectError> {
        self.inner.put(key, body, content_type).await
    }

    async fn dispose(&self, key: &str, disposition: Disposition) -> Result<(), ObjectError> {
        self.inner.dispose(key, disposition).await
    }
}

#[tokio::test]
async fn a_file_rewritten_while_it_is_ingested_fails_retryably_and_applies_nothing() {
    let d = dir();
    let root = d.path().join("data");
    let original = scenarios::FIXTURES[0].1;
    let replacement = scenarios::FIXTURES[1].1;
    std::fs::create_dir_all(root.join("inbox")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(root.join("inbox/a.x12"), original).unwrap_or_else(|e| panic!("{e}"));
    let objects = RewrittenAfterOpen {
        inner: FolderObjects::new(&root),
        root: root.clone(),
        replacement: replacement.to_vec(),
    };
    let store = store(&d, "s.redb");
    let ingestor = Ingestor::new(Arc::clone(&store), scenarios::config());
    let outcome = ingestor.ingest_object(&objects, "inbox/a.x12").await;
    match outcome {
        Err(e @ IngestError::Changed { .. }) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected Changed, got {other:?}"),
    }
    assert!(
        scenarios::versions(store.as_ref(), original)
            .await
            .is_empty()
    );
    assert!(
        scenarios::versions(store.as_ref(), replacement)
            .await
            .is_empty()
    );
    assert!(
        root.join("inbox/a.x12").is_file(),
        "the file stays in the inbox"
    );
    let claim = fhir_store::KeyValueStore::get(
        store.as_ref(),
        edi_ingest::ledger::NAMESPACE,
        edi_ingest::FileIdentity::content("any", original).ledger_key(),
    )
    .await;
    assert!(
        matches!(claim, Ok(None)),
        "the claim is released: {claim:?}"
    );
    // The retry reads the file as it is now.
    let again = ingestor.ingest_object(&objects.inner, "inbox/a.x12").await;
    assert!(
        matches!(&again, Ok(o) if o.disposition() == Disposition::Processed),
        "{again:?}"
    );
}

/// Compares with `tests/golden/NAME`; `UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"
    );
}
