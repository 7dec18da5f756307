//! The crate's one integration-test binary: the authorization server under attack
//! (`attacks`), over the helpers in `support`. The modules live in `it/` (named by
//! path: a crate root in `tests/` looks for its modules beside it).

#[path = "it/attacks.rs"]
mod attacks;
#[path = "it/support.rs"]
mod support;
