//! Fuzzed 834 bodies through the enrolment mapper and the merge rule (INS/HD maintenance, periods): nothing may panic.
//!
//! Run with `cargo +nightly fuzz run map_834` from the repository root; seed the
//! corpus with the bodies (ST..SE exclusive) of shared/x12/tests/fixtures/834.x12.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "envelope.rs"]
mod envelope;

fuzz_target!(|data: &[u8]| {
    envelope::run(&envelope::wrap("834", "005010X220A1", "BE", data));
    envelope::run(data);
});
