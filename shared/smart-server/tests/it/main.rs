//! The crate's one integration-test binary: the authorization server under attack
//! (`attacks`), over the helpers in `support`. Cargo finds this crate root as
//! `tests/it/main.rs`; its modules sit beside it.

mod attacks;
mod support;
