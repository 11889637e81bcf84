//! The iscp worker: registers with a coordinator, leases units for each device slot, runs them on
//! that slot's compute thread, streams heartbeats and results back, and stops gracefully.
//! `run(options, shutdown)` is the entry point of `iscp worker` and of the in-process runner.

pub mod artifacts;
pub mod client;
pub mod crash;
mod deliver;
pub mod executor;
mod heartbeat;
pub mod parts;
mod retry;
mod shared;
mod slot;
pub mod specs;

pub use client::{connect, Client, Connect, ConnectError};
pub use shared::WorkerError;

use shared::Shared;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub connect: Connect,
    /// Shown in status and written to the `worker` column.
    pub name: String,
    /// One slot per device: `cpu`, `cuda:0`, ...
    pub devices: Vec<String>,
    /// Most units leased at once per slot (searches on one model run as one batch); 0: chosen per
    /// device by `auto_max_units`.
    pub max_units: usize,
    /// Model artifacts and training checkpoints, kept between runs.
    pub cache: PathBuf,
    /// On shutdown, how long running units may take to finish before they are handed back.
    pub grace: Duration,
    /// libtorch intra-op threads (CPU slots).
    pub threads: Option<usize>,
    /// Stop once no unit has been leased for this long; None: never.
    pub idle_exit: Option<Duration>,
    /// Where notes about finished units go (a model's accuracy, a resumed training); logged when
    /// None.
    pub notes: Option<std::sync::mpsc::Sender<String>>,
}

/// Searches one slot leases at once when the worker is not told (`--max-units auto`). On a CPU,
/// 12 per intra-op thread: the searches run in one single-threaded lane per thread, and a lane's
/// cost per search levels off at about 12 searches (bench figures in docs/benchmarks.md). On a GPU, 256:
/// the engine runs as many of them at once as the device's free memory holds, in turn.
pub fn auto_max_units(device: &str, threads: Option<usize>) -> usize {
    // `iscp_sweep::throughputs` times searches batched as this chooses: change both together.
    if device.starts_with("cuda") {
        return 256;
    }
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    12 * threads.max(1)
}

/// What a worker did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSummary {
    pub completed: u64,
    pub failed: u64,
    pub handed_back: u64,
}

/// Runs the worker until `shutdown` resolves (or a fatal error: wrong token, protocol mismatch).
pub async fn run(
    opts: WorkerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<WorkerSummary, WorkerError> {
    if let Some(t) = opts.threads {
        tch::set_num_threads(t as i32);
    }
    std::fs::create_dir_all(&opts.cache).map_err(|e| WorkerError::Io(opts.cache.clone(), e))?;
    let shared = Arc::new(Shared::new(opts)?);
    shared.register().await?;
    deliver::crashes(&shared).await;
    let mut slots = tokio::task::JoinSet::new();
    let (ck_tx, ck_rx) = tokio::sync::mpsc::unbounded_channel();
    let uploader = tokio::spawn(artifacts::upload_checkpoints(shared.clone(), ck_rx));
    for device in shared.opts.devices.clone() {
        let compute = slot::spawn_compute(&shared, &device, ck_tx.clone())?;
        slots.spawn(slot::run_slot(shared.clone(), device, compute));
    }
    let hb = tokio::spawn(heartbeat::run_heartbeats(shared.clone()));
    let mut fatal = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = slots.join_next() => match r {
                Some(Ok(Err(e))) => { fatal = Some(e); break; }
                Some(_) => continue,
                None => break,
            },
        }
    }
    shared.stopping.store(true, Ordering::SeqCst);
    let grace = shared.opts.grace;
    let finished = tokio::time::timeout(grace, async {
        while let Some(r) = slots.join_next().await {
            if let Ok(Err(e)) = r {
                fatal.get_or_insert(e);
            }
        }
    })
    .await;
    if finished.is_err() {
        slots.abort_all();
    }
    shared.hand_back_all().await;
    hb.abort();
    uploader.abort();
    if let Some(e) = fatal {
        return Err(e);
    }
    Ok(shared.summary())
}

#[cfg(test)]
mod tests {
    use super::auto_max_units;

    #[test]
    fn auto_lease_size_follows_the_device() {
        assert_eq!(auto_max_units("cpu", Some(2)), 24);
        assert_eq!(auto_max_units("cpu", Some(1)), 12);
        assert_eq!(auto_max_units("cuda:0", Some(2)), 256);
        assert!(auto_max_units("cpu", None) >= 12);
    }
}
