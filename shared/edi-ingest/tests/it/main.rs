//! The crate's one integration-test binary: the ingest scenarios over redb
//! (`redb`), store failures (`failures`), the 999s through pyx12 (`pyx12`) and
//! the heap measurements (`memory`, ignored by default: `cargo test -p
//! edi-ingest --test it memory -- --ignored --nocapture`). Cargo finds this
//! crate root as `tests/it/main.rs`; its modules sit beside it.

mod failures;
mod memory;
mod pyx12;
mod redb;
mod support;
