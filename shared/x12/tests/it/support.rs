//! The fixture folders the test modules read: `tests/fixtures` (valid files)
//! and `tests/bad` (the bad-input corpus).

use std::path::PathBuf;

fn read(folder: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(folder)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A valid fixture.
pub fn fixture(name: &str) -> Vec<u8> {
    read("fixtures", name)
}

/// A file of the bad-input corpus.
pub fn bad(name: &str) -> Vec<u8> {
    read("bad", name)
}

/// Every valid fixture, in name order.
pub fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}
