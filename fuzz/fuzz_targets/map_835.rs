//! Fuzzed 835 bodies through the remittance mapper and the merge rule (reversals, corrections, CAS triplets): nothing may panic.
//!
//! Run with `cargo +nightly fuzz run map_835` from the repository root; seed the
//! corpus with the bodies (ST..SE exclusive) of shared/x12/tests/fixtures/835.x12.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "envelope.rs"]
mod envelope;

fuzz_target!(|data: &[u8]| {
    envelope::run(&envelope::wrap("835", "005010X221A1", "HP", data));
    envelope::run(data);
});
