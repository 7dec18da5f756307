//! The runner's X12 commands, run as the real binary: `convert` (valid Bundles on
//! stdout, the report and a non-zero exit on bad input), `ingest` (summaries, a
//! second run is a no-op), and the inbox `serve` watches.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/x12/tests")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patient-access"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run patient-access: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Keeps the Bundle for the FHIR validator the test command runs afterwards.
fn capture(name: &str, json: &str) {
    if let Some(dir) = std::env::var_os("FHIR_CAPTURE_DIR") {
        let _ = std::fs::write(
            PathBuf::from(dir).join(format!("convert-{name}.json")),
            json,
        );
    }
}

#[test]
fn convert_prints_a_collection_bundle_for_every_fixture() {
    for name in ["837p", "837p_cob", "837i", "837d", "835", "834"] {
        let path = fixture(&format!("fixtures/{name}.x12"));
        let output = run(&["convert", &path.display().to_string()]);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = stdout(&output);
        let bundle: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "collection");
        let entries = bundle["entry"].as_array().map_or(0, Vec::len);
        assert!(entries >= 2, "{name}: {entries} entries");
        capture(name, &text);
    }
}

#[test]
fn convert_of_bad_input_prints_the_report_and_fails() {
    for name in [
        "wrong_se_count",
        "not_x12",
        "truncated",
        "unknown_transaction",
    ] {
        let path = fixture(&format!("bad/{name}.x12"));
        let output = run(&["convert", &path.display().to_string()]);
        assert!(!output.status.success(), "{name} must fail");
        let report: Value =
            serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report["status"], "rejected", "{name}: {report}");
        let problems = report["file_problems"].as_array().map_or(0, Vec::len)
            + report["transaction_sets"].as_array().map_or(0, |sets| {
                sets.iter()
                    .map(|s| s["problems"].as_array().map_or(0, Vec::len))
                    .sum()
            });
        assert!(problems > 0, "{name}: {report}");
    }
}

#[test]
fn ingest_loads_files_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().display().to_string();
    let files: Vec<String> = ["837p", "835", "834"]
        .iter()
        .map(|n| fixture(&format!("fixtures/{n}.x12")).display().to_string())
        .collect();
    let mut args = vec!["ingest", "--data", &data];
    args.extend(files.iter().map(String::as_str));
    let first = run(&args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let text = stdout(&first);
    assert_eq!(
        text.matches(": processed; sets 1 accepted").count(),
        3,
        "{text}"
    );
    let second = run(&args);
    assert!(second.status.success());
    let text = stdout(&second);
    assert_eq!(
        text.matches("already ingested (processed").count(),
        3,
        "{text}"
    );

    let bad = fixture("bad/wrong_se_count.x12").display().to_string();
    let rejected = run(&["ingest", "--data", &data, &bad]);
    assert!(!rejected.status.success());
    let text = format!(
        "{}{}",
        stdout(&rejected),
        String::from_utf8_lossy(&rejected.stderr)
    );
    assert!(text.contains("rejected") && text.contains("SE01"), "{text}");
}

#[test]
fn the_inbox_ingests_dropped_files_and_moves_them_with_report_and_999() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let store = Arc::new(
            store_redb::RedbStore::open(root.join("fhir.redb")).unwrap_or_else(|e| panic!("{e}")),
        );
        tokio::spawn(patient_access::edi::watch_inbox(store, root.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let inbox = root.join(patient_access::edi::INBOX);
        std::fs::copy(fixture("fixtures/837i.x12"), inbox.join("good.x12"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(fixture("bad/mismatched_iea02.x12"), inbox.join("bad.x12"))
            .unwrap_or_else(|e| panic!("{e}"));
        let expected = [
            "processed/good.x12.json",
            "processed/good.x12.999",
            "rejected/bad.x12.json",
            "rejected/bad.x12",
        ];
        for _ in 0..100 {
            if expected.iter().all(|p| root.join(p).is_file()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for p in expected {
            assert!(root.join(p).is_file(), "{p} missing");
        }
        assert!(!inbox.join("good.x12").exists());
    });
}

#[test]
fn ingest_goes_through_the_inbox_while_serve_holds_the_store() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    // This process plays `serve`: it holds the store and watches the inbox.
    let store = Arc::new(
        store_redb::RedbStore::open(root.join("fhir.redb")).unwrap_or_else(|e| panic!("{e}")),
    );
    runtime.spawn(patient_access::edi::watch_inbox(store, root.clone()));
    let data = root.display().to_string();
    let good = fixture("fixtures/834.x12").display().to_string();
    let output = run(&["ingest", "--data", &data, &good]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("handing the files to its inbox"), "{text}");
    assert!(
        text.contains(": processed; sets 1 accepted") && text.contains("processed/834.x12.json"),
        "{text}"
    );
    let again = run(&["ingest", "--data", &data, &good]);
    assert!(
        stdout(&again).contains("already ingested"),
        "{}",
        stdout(&again)
    );
    let bad = fixture("bad/wrong_se_count.x12").display().to_string();
    let rejected = run(&["ingest", "--data", &data, &bad]);
    assert!(!rejected.status.success());
    assert!(
        stdout(&rejected).contains(": rejected;"),
        "{}",
        stdout(&rejected)
    );
}
