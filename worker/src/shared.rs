//! State shared by a worker's slots and heartbeat: the client, the worker's identity, the units it
//! holds, and its counters; registration and the hand-back on shutdown.

use crate::client::{connect, Client, ConnectError};
use crate::retry::{is_fatal, said_aloud, Backoff};
use crate::{WorkerOptions, WorkerSummary};
use iscp_proto::v1::{DeviceInfo, FailUnitParams, RegisterWorkerParams};
use iscp_proto::{UnitKey, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The coordinator refused us for good: wrong token, protocol mismatch.
    #[error("the coordinator refused this worker: {0}")]
    Refused(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("device `{0}`: {1}")]
    Device(String, String),
}

/// Steps done and total of each running unit, read by the heartbeat.
pub type ProgressMap = std::sync::Arc<Mutex<HashMap<UnitKey, (u64, u64)>>>;

/// A unit the worker holds a lease on (keyed by its sweep and id).
#[derive(Debug, Clone)]
pub struct Held {
    pub lease_id: String,
    pub attempt: u64,
    pub cancelled: bool,
}

pub struct Shared {
    pub opts: WorkerOptions,
    pub client: Client,
    pub worker_id: String,
    pub held: Mutex<HashMap<UnitKey, Held>>,
    pub progress: ProgressMap,
    /// Unit → (epoch, sha256, stats JSON) of its last uploaded checkpoint, for the heartbeat.
    pub checkpoints: Mutex<HashMap<UnitKey, Checkpoint>>,
    pub stopping: AtomicBool,
    pub heartbeat_ms: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub handed_back: AtomicU64,
    /// Milliseconds since the epoch of the last lease that brought units.
    pub last_lease_ms: AtomicU64,
}

/// A training checkpoint stored on the coordinator: (epochs done, sha256, stats JSON).
pub type Checkpoint = (u64, String, String);

/// The (sweep, unit) a leased unit is named by.
pub fn key_of(u: &iscp_proto::v1::LeasedUnit) -> UnitKey {
    UnitKey::new(u.sweep.as_str(), u.unit_id.as_str())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    pub fn new(opts: WorkerOptions) -> Result<Shared, WorkerError> {
        let client = connect(&opts.connect)?;
        let worker_id = format!("{}-{:08x}", opts.name, rand::random::<u32>());
        Ok(Shared {
            opts,
            client,
            worker_id,
            held: Mutex::default(),
            progress: ProgressMap::default(),
            checkpoints: Mutex::default(),
            stopping: AtomicBool::new(false),
            heartbeat_ms: AtomicU64::new(1000),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            handed_back: AtomicU64::new(0),
            last_lease_ms: AtomicU64::new(now_ms()),
        })
    }

    pub fn checkpoints(&self) -> std::sync::MutexGuard<'_, HashMap<UnitKey, Checkpoint>> {
        self.checkpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn held(&self) -> std::sync::MutexGuard<'_, HashMap<UnitKey, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (again), retrying while the coordinator is away; refusals are fatal.
    pub async fn register(&self) -> Result<(), WorkerError> {
        let mut backoff = Backoff::new();
        let mut tries = 0u32;
        loop {
            tries += 1;
            let req = RegisterWorkerParams {
                protocol_version: PROTOCOL_VERSION,
                worker_id: self.worker_id.clone(),
                name: self.opts.name.clone(),
                devices: self
                    .opts
                    .devices
                    .iter()
                    .map(|d| DeviceInfo { name: d.clone() })
                    .collect(),
            };
            match self.client.clone().register_worker(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    self.heartbeat_ms
                        .store(r.heartbeat_interval_ms.max(50), Ordering::SeqCst);
                    tracing::info!(worker = %self.worker_id, "registered");
                    return Ok(());
                }
                Err(s) if is_fatal(&s) => {
                    return Err(WorkerError::Refused(s.message().to_string()))
                }
                Err(s) => {
                    // Said at the first try and then every tenth: a worker started before its
                    // coordinator (or pointed at the wrong one) must not look idle.
                    if said_aloud(tries) {
                        tracing::warn!(
                            "waiting for the coordinator at {} (try {tries}, next in {:.1} s): {}",
                            self.opts.connect.url,
                            backoff.0.as_secs_f64(),
                            s.message()
                        );
                    } else {
                        tracing::debug!("register: {s}");
                    }
                    if self.stopping.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    backoff.wait().await;
                }
            }
        }
    }

    /// Gives every unit still held back to the coordinator without counting an attempt.
    pub async fn hand_back_all(&self) {
        let held: Vec<(UnitKey, Held)> = self.held().drain().collect();
        for (key, h) in held {
            let req = FailUnitParams {
                protocol_version: PROTOCOL_VERSION,
                worker_id: self.worker_id.clone(),
                sweep: key.sweep.to_string(),
                unit_id: key.unit.to_string(),
                lease_id: h.lease_id,
                attempt: h.attempt,
                error: "handed back: the worker is stopping".into(),
                reason: iscp_proto::v1::FailureReason::Transport.into(),
                handed_back: true,
            };
            match self.client.clone().fail_unit(req).await {
                Ok(_) => {
                    self.handed_back.fetch_add(1, Ordering::SeqCst);
                    tracing::info!("handed back {key}");
                }
                // The lease is no longer ours (its completion landed as we stopped, or it
                // expired): there is nothing to hand back.
                Err(s) if s.code() == Code::FailedPrecondition => {
                    tracing::debug!("not handing back {key}: {}", s.message())
                }
                Err(s) => tracing::warn!("handing back {key}: {s}"),
            }
        }
    }

    pub fn summary(&self) -> WorkerSummary {
        WorkerSummary {
            completed: self.completed.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            handed_back: self.handed_back.load(Ordering::SeqCst),
        }
    }
}
