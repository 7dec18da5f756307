//! The convert command's file writer: bytes in order, errors back to the caller.

use std::fs::File;
use std::io::{Read, Write};

use patient_access::background_writer::{BUFFER, BackgroundWriter};

#[test]
fn everything_written_reaches_the_file_in_order() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("out");
    let file = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut writer = BackgroundWriter::new(file);
    let mut expected = Vec::new();
    // Lines of every size up to several buffers, so that writes straddle buffers.
    for i in 0..5_000usize {
        let line = format!("{i}:{}\n", "x".repeat(i * 7 % 3_001));
        writer
            .write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        expected.extend_from_slice(line.as_bytes());
    }
    writer
        .write_all(&vec![b'y'; 3 * BUFFER])
        .unwrap_or_else(|e| panic!("{e}"));
    expected.extend(std::iter::repeat_n(b'y', 3 * BUFFER));
    writer.finish().unwrap_or_else(|e| panic!("{e}"));
    let mut written = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut written))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.len(), expected.len());
    assert!(written == expected, "the bytes differ");
}

#[test]
fn flush_waits_until_the_bytes_are_in_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("out");
    let file = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut writer = BackgroundWriter::new(file);
    writer
        .write_all(&vec![b'a'; BUFFER + 10])
        .and_then(|()| writer.write_all(b"tail"))
        .and_then(|()| writer.flush())
        .unwrap_or_else(|e| panic!("{e}"));
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    assert_eq!(size, BUFFER as u64 + 14);
}

#[test]
fn a_write_error_comes_back_to_the_caller() {
    // /dev/full fails every write(2) with ENOSPC.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut writer = BackgroundWriter::new(full);
    let written = writer
        .write_all(&vec![b'z'; 4 * BUFFER])
        .and_then(|()| writer.flush());
    assert!(written.is_err());
}
