//! The local runner's integration tests, one binary (linking is the slow part of CI).
//! Most tests share one read-only server (`support::harness`); the ones that need
//! another store or the real binary set up their own.

mod both_stores;
mod carin_search;
mod cors;
mod demo_x12;
mod demo_x12_pyx12;
mod edi;
mod http_errors;
mod isolation;
mod member_match;
mod payer_exchange;
mod prior_authorization;
mod provider_access;
mod support;
mod usage_metrics;
