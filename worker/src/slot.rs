//! A device slot: a compute thread that owns the engine for one device, and the async loop that
//! leases units for it, makes sure their model is cached, runs them, and reports the results
//! (`report`).

use crate::artifacts;
use crate::executor::{all_failed, Executor, Outcome};
use crate::retry::{is_fatal, is_transient, Backoff};
use crate::shared::{key_of, now_ms, Held, Shared, WorkerError};
use iscp_proto::v1::{FailureReason, LeaseUnitsParams, LeasedUnit};
use iscp_proto::PROTOCOL_VERSION;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;
use tonic::Code;

type Job = (Vec<LeasedUnit>, oneshot::Sender<Vec<Outcome>>);

/// Starts the compute thread of a device: libtorch never runs on the async runtime.
pub fn spawn_compute(
    shared: &Shared,
    device: &str,
    checkpoints: tokio::sync::mpsc::UnboundedSender<crate::executor::CheckpointReport>,
) -> Result<mpsc::Sender<Job>, WorkerError> {
    let dev = iscp_engine::parse_device(device)
        .and_then(|d| iscp_engine::cuda::ensure(d).map(|_| d))
        .map_err(|e| WorkerError::Device(device.to_string(), e.to_string()))?;
    let (name, cache, progress, notes) = (
        shared.opts.name.clone(),
        shared.opts.cache.clone(),
        shared.progress.clone(),
        shared.opts.notes.clone(),
    );
    let threads_fixed = shared.opts.threads.is_some();
    let parts = crate::parts::from_coordinator(shared);
    let specs = crate::specs::from_coordinator(shared);
    let device_name = device.to_string();
    let marker = crate::crash::Marker::new(&shared.opts.cache, device);
    let worker_id = shared.worker_id.clone();
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name(format!("iscp-{device}"))
        .spawn(move || {
            // Built here: its tensors never leave this thread.
            let mut ex = Executor::new(dev, &device_name, &name, cache);
            ex.progress = progress;
            ex.notes = notes;
            ex.checkpoints = Some(checkpoints);
            ex.threads_fixed = threads_fixed;
            ex.parts = Some(parts);
            ex.specs = Some(specs);
            while let Ok((units, reply)) = rx.recv() {
                // Names the units while they run: a crash inside them is theirs.
                marker.start(&worker_id, &device_name, &units);
                let out = ex.run(&units);
                marker.finish();
                let _ = reply.send(out);
            }
        })
        .map_err(|e| WorkerError::Device(device.to_string(), e.to_string()))?;
    Ok(tx)
}

pub async fn run_slot(
    shared: Arc<Shared>,
    device: String,
    compute: mpsc::Sender<Job>,
) -> Result<(), WorkerError> {
    let mut backoff = Backoff::new();
    while !shared.stopping.load(Ordering::SeqCst) {
        if let Some(idle) = shared.opts.idle_exit {
            let last = shared.last_lease_ms.load(Ordering::SeqCst);
            if now_ms().saturating_sub(last) > idle.as_millis() as u64 && shared.held().is_empty() {
                return Ok(());
            }
        }
        let req = LeaseUnitsParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: shared.worker_id.clone(),
            max_units: match shared.opts.max_units {
                0 => crate::auto_max_units(&device, shared.opts.threads),
                n => n,
            } as u32,
            held_models: artifacts::cached(&shared.opts.cache),
            wait_ms: 2000,
            device: device.clone(),
        };
        let units = match shared.client.clone().lease_units(req).await {
            Ok(r) => {
                backoff = Backoff::new();
                r.into_inner().units
            }
            Err(s) if s.code() == Code::NotFound => {
                shared.register().await?;
                continue;
            }
            Err(s) if is_fatal(&s) => return Err(WorkerError::Refused(s.message().to_string())),
            Err(s) => {
                tracing::debug!("lease: {s}");
                backoff.wait().await;
                continue;
            }
        };
        if units.is_empty() {
            continue;
        }
        shared.last_lease_ms.store(now_ms(), Ordering::SeqCst);
        {
            let mut held = shared.held();
            for u in &units {
                held.insert(
                    key_of(u),
                    Held {
                        lease_id: u.lease_id.clone(),
                        attempt: u.attempt,
                        cancelled: false,
                    },
                );
            }
        }
        let outcomes = run_units(&shared, &compute, &units).await;
        crate::deliver::report_all(&shared, &units, outcomes).await;
        for u in &units {
            let key = key_of(u);
            shared.held().remove(&key);
            shared.checkpoints().remove(&key);
            shared
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        shared.last_lease_ms.store(now_ms(), Ordering::SeqCst);
    }
    Ok(())
}

/// Fetches the units' model, checkpoint and input artifacts if needed, then runs them on the
/// compute thread.
async fn run_units(
    shared: &Shared,
    compute: &mpsc::Sender<Job>,
    units: &[LeasedUnit],
) -> Vec<Outcome> {
    let u = &units[0];
    let needed = [&u.model_sha256, &u.checkpoint_sha256]
        .into_iter()
        .chain(&u.input_artifacts);
    for sha in needed {
        if sha.is_empty() {
            continue;
        }
        let mut backoff = Backoff::new();
        loop {
            match artifacts::ensure(&shared.client, &shared.opts.cache, sha).await {
                Ok(_) => break,
                Err(s) if is_transient(&s) && !shared.stopping.load(Ordering::SeqCst) => {
                    backoff.wait().await
                }
                Err(s) => {
                    let error = format!("fetching artifact {sha}: {}", s.message());
                    return all_failed(units.len(), FailureReason::MissingArtifact, error);
                }
            }
        }
    }
    let (tx, rx) = oneshot::channel();
    if compute.send((units.to_vec(), tx)).is_err() {
        return all_failed(
            units.len(),
            FailureReason::Internal,
            "the compute thread is gone",
        );
    }
    rx.await.unwrap_or_else(|_| {
        all_failed(
            units.len(),
            FailureReason::Internal,
            "the compute thread stopped",
        )
    })
}
