//! The crate's one integration-test binary: the mapping and merge rules
//! stated as tests (`spec`), the golden Bundles (`golden`) and corrupted
//! fixtures through every mapper (`mutation`). Cargo finds this crate root as
//! `tests/it/main.rs`; its modules sit beside it.

mod golden;
mod mutation;
mod prior_authorization;
mod spec;
mod support;
