//! How the scheduler behaves: lease times, retry budgets, size limits.

use std::path::PathBuf;
use std::time::Duration;

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Holds `ledger.sqlite`.
    pub state_dir: PathBuf,
    /// Results land in `<results_dir>/<sweep>/<table>/part-<unit>.parquet`.
    pub results_dir: PathBuf,
    /// A lease not extended by a heartbeat for this long goes back to the queue.
    pub lease_ttl: Duration,
    /// How often workers are told to heartbeat.
    pub heartbeat: Duration,
    /// Failed attempts of its own (reported by its worker) after which a unit is failed for good.
    pub max_attempts: u32,
    /// Expired leases after which a unit is failed for good (counted apart from `max_attempts`).
    pub max_expiries: u32,
    /// First retry delay; doubles with each failed attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The largest artifact (model, checkpoint) a worker may upload.
    pub max_artifact_bytes: u64,
    /// The largest spec source a sweep may be submitted with (every worker fetches it).
    pub max_spec_bytes: usize,
    /// What one lease's units may carry in all (spec, parameters, inputs): below the wire's
    /// message limit, so that a lease recorded is a lease delivered.
    pub max_lease_bytes: usize,
    /// The device (`cpu`, `cuda:N`) a submitted spec's models are timed on, so that each unit's
    /// work is its estimated time there (a local run times on its own device); None: work is
    /// estimated from assumed multiply-adds.
    pub time_models_on: Option<String>,
}

impl SchedulerConfig {
    pub fn new(state_dir: PathBuf, results_dir: PathBuf) -> SchedulerConfig {
        SchedulerConfig {
            state_dir,
            results_dir,
            lease_ttl: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            max_attempts: 3,
            max_expiries: 10,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            max_artifact_bytes: 4096 << 20,
            max_spec_bytes: 1 << 20,
            max_lease_bytes: iscp_proto::MAX_MESSAGE_BYTES - (1 << 20),
            time_models_on: None,
        }
    }
}
