//! Every kind of 999 we generate passes pyx12's validator (`x12valid`, map
//! 999.5010X231.A1): accepted, partially accepted, IK3 segment errors, IK4 element
//! errors, and group rejections.
//!
//! `x12valid` is looked up on PATH, then in `.venv/test/bin` (scripts/test-all
//! installs pyx12 there from scripts/requirements-test.txt), and run as
//! `python -m pyx12.scripts.x12valid` with the Python beside it: the installed
//! `x12valid` wrapper of pyx12 4.0 exits 1 on success (`sys.exit(True)`). Without
//! pyx12 the test says so and passes, so a plain `cargo test` on a machine without
//! Python still runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use edi_ingest::ack::{AckEnvelope, generate_999};
use edi_ingest::scenarios;

/// The Python that has pyx12, found through its `x12valid` script.
fn x12valid() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("x12valid"));
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/test/bin/x12valid");
    let script = on_path.chain(std::iter::once(venv)).find(|p| p.is_file())?;
    Some(script.with_file_name("python")).filter(|p| p.is_file())
}

fn envelope() -> AckEnvelope {
    AckEnvelope {
        sender_id: "RECEIVERID".into(),
        receiver_id: "SUBMITTERID".into(),
        date: "20240116".into(),
        time: "0830".into(),
        control_number: 7,
        production: false,
    }
}

#[test]
fn generated_999s_pass_pyx12() {
    let Some(validator) = x12valid() else {
        eprintln!(
            "x12valid (pyx12) not found: skipping the 999 validation (pip install -r scripts/requirements-test.txt)"
        );
        return;
    };
    let mut inputs: Vec<(String, Vec<u8>)> = scenarios::FIXTURES
        .iter()
        .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
        .collect();
    inputs.push(("mixed.x12".into(), scenarios::one_good_one_bad()));
    inputs.push(("base_5010.x12".into(), scenarios::base_5010_837p()));
    inputs.push((
        "gs08_disagreeing.x12".into(),
        scenarios::gs08_disagreeing_837p(),
    ));
    for wanted in [
        "wrong_se_count.x12",
        "bad_hl_parent.x12",
        "huge_element.x12",
        "wrong_ge_count.x12",
        "duplicate_control_number.x12",
    ] {
        let found = scenarios::BAD.iter().find(|(name, _)| *name == wanted);
        let (name, bytes) = found.unwrap_or_else(|| panic!("{wanted} is not in the corpus"));
        inputs.push(((*name).to_owned(), bytes.to_vec()));
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (name, bytes) in inputs {
        let conversion = edi_fhir::convert(&bytes, &scenarios::mapping());
        let ack =
            generate_999(&conversion, &envelope()).unwrap_or_else(|| panic!("{name}: no 999"));
        let path = dir.path().join(format!("{name}.999"));
        std::fs::write(&path, &ack).unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new(&validator)
            .args(["-m", "pyx12.scripts.x12valid"])
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", validator.display()));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && said.contains(": OK"),
            "{name}: pyx12 rejects our 999:\n{ack}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
