//! Feeds arbitrary bytes to both readers and walks every loop, segment,
//! element and component: nothing may panic.
//!
//! Run with `cargo +nightly fuzz run x12_reader` from the repository root;
//! seed the corpus with `shared/x12/tests/fixtures/*`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    x12::walk::walk_everything(data);
});
