//! Fuzzed 278 bodies through the prior-authorization mapper and the merge rule
//! (HCR decisions, HL levels under the subscriber or the dependent, the
//! request/response identity): nothing may panic.
//!
//! Run with `cargo +nightly fuzz run map_278` from the repository root; seed the
//! corpus with the bodies (ST..SE exclusive) of shared/x12/tests/fixtures/278_*.x12.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "envelope.rs"]
mod envelope;

fuzz_target!(|data: &[u8]| {
    envelope::run(&envelope::wrap("278", "005010X217", "HI", data));
    envelope::run(data);
});
