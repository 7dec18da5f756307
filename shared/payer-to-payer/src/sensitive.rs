//! Which resources a `#sensitive` consent keeps from another plan: the plan's list of
//! sensitive code ranges (42 CFR Part 2 and the categories the plan configures). It
//! lives in `bulk_export::sensitive`, beside the export worker that applies it to every
//! `$davinci-data-export` slice; this module is that one list under its usual name.

pub use bulk_export::sensitive::*;
