//! The ingest scenarios against the embedded redb store, plus the golden report and
//! 999 of the mixed good/bad file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edi_ingest::ack::{AckEnvelope, generate_999};
use edi_ingest::{FolderObjects, scenarios};
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
