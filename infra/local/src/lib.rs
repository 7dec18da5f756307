//! The local runner as a library, so tests and benchmarks start the very server that
//! `patient-access serve` starts.

pub mod admin;
pub mod auth;
pub mod commands;
pub mod convert;
mod data_dir;
mod demo;
pub mod directory;
pub mod edi;
pub mod p2p_asking;
mod pages;
pub mod payer_to_payer;
pub mod provider_access;
mod server;
pub mod sharing;
pub mod usage;

pub use data_dir::DataDir;
pub use demo::load_demo;
pub use server::{LocalServer, router};

/// Why a runner command failed. Shown to the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("data directory {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the embedded store: {0}")]
    Store(String),
    #[error("the local token issuer: {0}")]
    Issuer(String),
    #[error("could not listen on port {port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("{0} was rejected in whole or in part (the report is above)")]
    Rejected(String),
}

impl RunnerError {
    /// A file operation on `path` failed.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> RunnerError {
        RunnerError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
