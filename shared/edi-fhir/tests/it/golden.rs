//! Golden outputs: every fixture of the x12 crate, converted and folded into
//! a fresh store, must equal the committed Bundle under tests/golden/.
//! `UPDATE_GOLDEN=1 cargo test -p edi-fhir --test it golden` rewrites them;
//! `scripts/validate-fhir shared/edi-fhir/tests/golden` validates them.

use std::path::PathBuf;

use edi_fhir::{SetOutcome, convert, fold};

use crate::support::{bundle, config, fixtures_dir, streamed};

fn fixtures() -> Vec<PathBuf> {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "x12"));
    files.sort();
    files
}

#[test]
fn every_fixture_matches_its_golden_bundle() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let files = fixtures();
    assert!(files.len() >= 6, "fixtures not found");
    let golden_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut mismatches = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let conversion = convert(&bytes, &config());
        assert!(
            !conversion.rejects_everything,
            "{file:?}: {:?}",
            conversion.file_problems
        );
        for set in &conversion.transaction_sets {
            assert!(
                matches!(set.outcome, SetOutcome::Accepted { .. }),
                "{file:?}: {set:?}"
            );
        }
        let streamed = streamed(bytes.as_slice(), &config());
        assert_eq!(streamed, conversion, "{file:?}: stream and memory differ");
        let store = fold(conversion.changes());
        let text = serde_json::to_string_pretty(&bundle(&store)).unwrap_or_default() + "\n";
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
        let golden = golden_dir.join(format!("{stem}.json"));
        if update {
            std::fs::write(&golden, &text).unwrap_or_default();
        } else if std::fs::read_to_string(&golden).unwrap_or_default() != text {
            mismatches.push(golden);
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatch (UPDATE_GOLDEN=1 to rewrite): {mismatches:?}"
    );
}
