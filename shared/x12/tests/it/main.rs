//! The crate's one integration-test binary: the valid fixtures read as the
//! TR3s say (`fixtures`), the bad-input corpus (`bad_inputs`) and corrupted
//! fixtures (`mutation`). Cargo finds this crate root as `tests/it/main.rs`;
//! its modules sit beside it.

mod bad_inputs;
mod fixtures;
mod mutation;
mod support;
