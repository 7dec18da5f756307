//! Fuzzed 837 bodies (professional, institutional or dental, chosen by the first byte) through the claim mapper and the merge rule: nothing may panic.
//!
//! Run with `cargo +nightly fuzz run map_837` from the repository root; seed the
//! corpus with the bodies (ST..SE exclusive) of shared/x12/tests/fixtures/837*.x12.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "envelope.rs"]
mod envelope;

fuzz_target!(|data: &[u8]| {
    let (guide, body) = match data.split_first() {
        Some((b, rest)) if b % 3 == 1 => ("005010X223A2", rest),
        Some((b, rest)) if b % 3 == 2 => ("005010X224A2", rest),
        Some((_, rest)) => ("005010X222A1", rest),
        None => ("005010X222A1", data),
    };
    envelope::run(&envelope::wrap("837", guide, "HC", body));
    envelope::run(data);
});
