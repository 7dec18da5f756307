//! Until the runner's tests are one binary (`tests/it.rs`): this file only includes
//! the module; there it becomes `mod usage_metrics;`.

#[path = "it/usage_metrics.rs"]
mod usage_metrics;
