//! The scheduler's errors: their kind decides the answer a caller gets (stale, not found, invalid,
//! or internal, and out of space apart).

use super::ledger::LedgerError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A completion or failure whose lease is not current: refused and written nowhere.
    #[error("stale lease: {0}")]
    Stale(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Sweep(#[from] iscp_sweep::SweepError),
}

impl SchedulerError {
    /// Whether the disk (or quota) of the state or results folder is full.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            SchedulerError::Sweep(c) => c.is_out_of_space(),
            SchedulerError::Ledger(l) => iscp_sweep::error::says_out_of_space(&l.to_string()),
            _ => false,
        }
    }

    pub fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        SchedulerError::Sweep(iscp_sweep::SweepError::io(path, e))
    }
}

/// A scheduler call's outcome.
pub type SResult<T> = std::result::Result<T, SchedulerError>;
