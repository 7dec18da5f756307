//! The crate's one integration-test binary: the triggers event by event (`triggers`),
//! the local stand-in end to end (`local_signin`), the consent gate (`consent_gate`)
//! and the demo members (`demo_members`). The modules live in `it/` (named by path: a
//! crate root in `tests/` looks for its modules beside it).

#[path = "it/consent_gate.rs"]
mod consent_gate;
#[path = "it/demo_members.rs"]
mod demo_members;
#[path = "it/local_signin.rs"]
mod local_signin;
#[path = "it/support.rs"]
mod support;
#[path = "it/triggers.rs"]
mod triggers;
