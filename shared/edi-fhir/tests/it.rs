//! The crate's one integration-test binary: the mapping and merge rules
//! stated as tests (`spec`), the golden Bundles (`golden`) and corrupted
//! fixtures through every mapper (`mutation`). The modules live in `it/`
//! (named by path: a crate root in `tests/` looks for its modules beside it).

#[path = "it/golden.rs"]
mod golden;
#[path = "it/mutation.rs"]
mod mutation;
#[path = "it/spec.rs"]
mod spec;
#[path = "it/support.rs"]
mod support;
