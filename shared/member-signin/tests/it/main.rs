//! The crate's one integration-test binary: the triggers event by event (`triggers`),
//! the local stand-in end to end (`local_signin`), the consent gate (`consent_gate`)
//! and the demo members (`demo_members`). Cargo finds this crate root as
//! `tests/it/main.rs`; its modules sit beside it.

mod consent_gate;
mod demo_members;
mod local_signin;
mod support;
mod triggers;
