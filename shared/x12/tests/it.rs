//! The crate's one integration-test binary: the valid fixtures read as the
//! TR3s say (`fixtures`), the bad-input corpus (`bad_inputs`) and corrupted
//! fixtures (`mutation`). The modules live in `it/` (named by path: a crate
//! root in `tests/` looks for its modules beside it).

#[path = "it/bad_inputs.rs"]
mod bad_inputs;
#[path = "it/fixtures.rs"]
mod fixtures;
#[path = "it/mutation.rs"]
mod mutation;
#[path = "it/support.rs"]
mod support;
