//! The crate's one integration-test binary: the ingest scenarios over redb
//! (`redb`), store failures (`failures`), the 999s through pyx12 (`pyx12`) and
//! the heap measurements (`memory`, ignored by default: `cargo test -p
//! edi-ingest --test it memory -- --ignored --nocapture`). The modules live
//! in `it/` (named by path: a crate root in `tests/` looks for its modules
//! beside it).

#[path = "it/failures.rs"]
mod failures;
#[path = "it/memory.rs"]
mod memory;
#[path = "it/pyx12.rs"]
mod pyx12;
#[path = "it/redb.rs"]
mod redb;
#[path = "it/support.rs"]
mod support;
