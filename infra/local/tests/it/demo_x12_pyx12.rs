//! The generated demo X12 files pass pyx12's validator where pyx12 has a map (834,
//! 837P, 837I, 835; it has none for 837D). Skipped, saying so, when pyx12 is not
//! installed (scripts/test-all installs it into .venv/test).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python that has pyx12 (beside its `x12valid` script: the script itself exits
/// 1 on success in pyx12 4.0, so we run the module).
fn pyx12_python() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("x12valid"));
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/test/bin/x12valid");
    let script = on_path.chain(std::iter::once(venv)).find(|p| p.is_file())?;
    Some(script.with_file_name("python")).filter(|p| p.is_file())
}

#[test]
fn demo_x12_files_pass_pyx12() {
    let Some(python) = pyx12_python() else {
        eprintln!("pyx12 not found: skipping (pip install -r scripts/requirements-test.txt)");
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = demo_data::x12::files(&demo_data::DemoConfig::default());
    for (name, bytes) in files.iter().filter(|(name, _)| !name.contains("837d")) {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new(&python)
            .args(["-m", "pyx12.scripts.x12valid"])
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && said.contains(": OK"),
            "{name}: {said}"
        );
    }
}
