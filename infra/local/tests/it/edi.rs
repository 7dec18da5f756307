//! The runner's X12 commands, run as the real binary: `convert` (NDJSON or valid
//! Bundles, the report and a non-zero exit on bad input with no output left), `ingest` (summaries, a
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
    for name in [
        "837p",
        "837p_cob",
        "837i",
        "837d",
        "835",
        "834",
        // Prior authorizations: every HCR01 action, a request and its response.
        "278_pended",
        "278_approved",
        "278_partial",
        "278_denied",
        "278_cancelled",
        "278_request",
        "278_request_response",
        "278_contact_no_action",
    ] {
        let path = fixture(&format!("fixtures/{name}.x12"));
        let output = run(&["convert", "--bundle", &path.display().to_string()]);
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
fn convert_writes_one_resource_a_line_by_default_the_same_as_the_bundle() {
    let path = fixture("fixtures/837p.x12").display().to_string();
    let ndjson = run(&["convert", &path]);
    assert!(ndjson.status.success());
    let lines: Vec<Value> = stdout(&ndjson)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().all(|r| r["resourceType"].is_string()));
    assert!(
        lines
            .iter()
            .any(|r| r["resourceType"] == "ExplanationOfBenefit")
    );
    let bundle: Value = serde_json::from_str(&stdout(&run(&["convert", "--bundle", &path])))
        .unwrap_or_else(|e| panic!("{e}"));
    let entries: Vec<Value> = bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(entries, lines);
}

/// The converting pass over `x12` on `workers` threads: (report, output).
fn convert_on(
    workers: usize,
    x12: &[u8],
    format: patient_access::convert::ConvertFormat,
) -> (edi_ingest::Report, Vec<u8>) {
    patient_access::convert::write_resources(
        Path::new("claims.x12"),
        x12,
        &patient_access::edi::local_mapping(),
        format,
        Vec::new(),
        workers,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sets_mapped_side_by_side_come_out_in_file_order_byte_for_byte() {
    use patient_access::convert::ConvertFormat::{Bundle, Ndjson};
    // Three transaction sets of up to 5,000 claims, each more output than the
    // blocks a set waiting for its turn may hold with two workers or more.
    let x12 = x12::generate::generate_837p(12_000, 7);
    let (report, one) = convert_on(1, &x12, Ndjson);
    assert_eq!(report.transaction_sets.len(), 3);
    assert_eq!(report.totals.sets_rejected, 0);
    assert!(one.len() / 3 > patient_access::convert::IN_FLIGHT_BYTES / 2);
    for workers in [2, 3] {
        let (_, many) = convert_on(workers, &x12, Ndjson);
        assert!(many == one, "{workers} workers wrote other bytes");
    }
    let (_, bundle) = convert_on(3, &x12, Bundle);
    let bundle: Value = serde_json::from_slice(&bundle).unwrap_or_else(|e| panic!("{e}"));
    let entries: Vec<&Value> = bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["resource"]).collect())
        .unwrap_or_default();
    let lines: Vec<Value> = one
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(entries.len(), lines.len());
    assert!(entries.iter().zip(&lines).all(|(e, l)| *e == l));
}

#[test]
fn a_file_that_converts_to_nothing_is_an_empty_bundle() {
    use patient_access::convert::ConvertFormat::Bundle;
    let text = String::from_utf8(x12::generate::generate_837p(1, 3)).unwrap_or_default();
    // The envelope alone: ISA, GS, GE, IEA.
    let envelope: String = text
        .split_inclusive('~')
        .filter(|s| {
            ["ISA", "GS*", "GE*", "IEA"]
                .iter()
                .any(|t| s.starts_with(t))
        })
        .map(|s| s.replace("GE*1*", "GE*0*"))
        .collect();
    let (report, bundle) = convert_on(2, envelope.as_bytes(), Bundle);
    assert!(report.transaction_sets.is_empty());
    let bundle: Value = serde_json::from_slice(&bundle).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bundle,
        serde_json::json!({"resourceType": "Bundle", "type": "collection"})
    );
}

#[test]
fn convert_to_a_file_leaves_the_file_only_when_the_input_is_accepted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("out.ndjson");
    let out_arg = out.display().to_string();
    let good = fixture("fixtures/835.x12").display().to_string();
    let done = run(&["convert", &good, "-o", &out_arg]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout(&done).is_empty(), "the resources go to the file");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(text.lines().count() >= 2, "{text}");
    std::fs::remove_file(&out).unwrap_or_else(|e| panic!("{e}"));
    // A group count error shows only at GE, after the set was converted.
    let bad = fixture("bad/wrong_ge_count.x12").display().to_string();
    let refused = run(&["convert", &bad, "-o", &out_arg]);
    assert!(!refused.status.success());
    let report: Value = serde_json::from_str(&stdout(&refused)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report["status"], "rejected");
    assert!(!out.exists(), "no output for a rejected file");
    let leftovers = std::fs::read_dir(dir.path()).map_or(0, Iterator::count);
    assert_eq!(leftovers, 0, "no partial file left behind");
}

#[test]
fn convert_to_a_device_or_pipe_writes_in_place_and_leaves_it_what_it_is() {
    let good = fixture("fixtures/837p.x12").display().to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("out.ndjson");
    let to_file = run(&["convert", &good, "-o", &file.display().to_string()]);
    assert!(to_file.status.success());
    let expected = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(expected.lines().count() >= 2);

    // A named pipe gets the same lines, and stays a pipe.
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap_or_default())
    };
    let to_pipe = run(&["convert", &good, "-o", &fifo.display().to_string()]);
    assert!(
        to_pipe.status.success(),
        "{}",
        String::from_utf8_lossy(&to_pipe.stderr)
    );
    assert_eq!(reader.join().unwrap_or_default(), expected);
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(&fifo).map(|m| m.file_type().is_fifo());
    assert!(matches!(kind, Ok(true)), "the pipe is still a pipe");

    // A device that refuses the bytes fails the command with the reason, and stays a
    // device (renaming a finished file onto it would have replaced it).
    let refused = run(&["convert", &good, "-o", "/dev/full"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let kind = std::fs::metadata("/dev/full").map(|m| m.file_type().is_char_device());
    assert!(matches!(kind, Ok(true)));
}

#[test]
fn convert_of_a_base_5010_file_converts_and_warns() {
    let text = std::fs::read_to_string(fixture("fixtures/837p.x12")).unwrap_or_default();
    let base = text.replace("005010X222A1", "005010X222");
    assert_ne!(base, text);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("base.x12");
    std::fs::write(&path, base).unwrap_or_else(|e| panic!("{e}"));
    let output = run(&["convert", &path.display().to_string()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout(&output).lines().count() >= 2);
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(
        warnings.contains("warning") && warnings.contains("005010X222A1"),
        "{warnings}"
    );
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
            "processed/good.x12",
            "processed/good.x12.json",
            "processed/good.x12.999",
            "rejected/bad.x12.json",
            "rejected/bad.x12",
        ];
        // The pipeline writes the report and 999 before it moves the file, so wait for
        // the whole move, not only for the reports.
        let moved = || {
            expected.iter().all(|p| root.join(p).is_file())
                && !inbox.join("good.x12").exists()
                && !inbox.join("bad.x12").exists()
        };
        for _ in 0..100 {
            if moved() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for p in expected {
            assert!(root.join(p).is_file(), "{p} missing");
        }
        assert!(!inbox.join("good.x12").exists());
        assert!(!inbox.join("bad.x12").exists());
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
