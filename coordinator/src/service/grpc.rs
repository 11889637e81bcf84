//! The gRPC face of the coordinator: wire types converted to domain calls on the scheduler, the
//! protocol version checked, long-polled leases, artifacts streamed in chunks.

use super::completion::{unit_completed, Completion};
use super::convert::{to_leased, to_proto_event, to_proto_status};
use super::core::{Core, LeaseClaim, UnitKey};
use super::durable::GroupSync;
use super::lease::Beat;
use super::submit::{expand, noop_units, PartsOnDisk};
use super::uploads::Purpose;
use super::{CResult, CoreConfig, CoreError, Event};
use iscp_proto::v1::*;
use iscp_proto::{CHUNK_BYTES, MAX_BATCH_UNITS, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Longest a lease call is held open waiting for work.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// The coordinator service; cheap to clone (shared state).
#[derive(Clone)]
pub struct Service {
    core: Arc<Mutex<Core>>,
    /// The ledger's group commit: every call is answered only once its commit is on disk.
    sync: Arc<GroupSync>,
    wake: Arc<Notify>,
    /// How long each lease took in the scheduler (lock, choice, ledger commit).
    lease_latency: Arc<super::LatencyLog>,
}

impl From<CoreError> for Status {
    fn from(e: CoreError) -> Status {
        if e.is_out_of_space() {
            // Not transient to the worker: it reports the unit failed (its attempt counts) after
            // a few tries instead of resending forever.
            tracing::error!("out of space: {e}");
            return Status::resource_exhausted(format!("coordinator out of space: {e}"));
        }
        match &e {
            CoreError::Stale(_) => Status::failed_precondition(e.to_string()),
            CoreError::NotFound(_) => Status::not_found(e.to_string()),
            CoreError::Invalid(_) => Status::invalid_argument(e.to_string()),
            CoreError::Coord(iscp_sweep::CoordError::Spec { .. }) => {
                Status::invalid_argument(e.to_string())
            }
            _ => Status::internal(e.to_string()),
        }
    }
}

/// The locked scheduler of one call (see `Service::core`).
pub(super) struct CoreGuard<'a> {
    core: Option<MutexGuard<'a, Core>>,
    sync: &'a GroupSync,
    changes: u64,
}

impl std::ops::Deref for CoreGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        self.core.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        self.core.as_mut().expect("held until dropped")
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        let Some(core) = self.core.take() else {
            return;
        };
        // Numbered under the lock, so commit order and numbers agree.
        let seq = (core.ledger.total_changes() != self.changes).then(|| self.sync.written());
        drop(core);
        if let Some(seq) = seq {
            if let Err(e) = self.sync.wait(seq) {
                // Not durable: the call must not be answered as if it were.
                if !std::thread::panicking() {
                    panic!("the ledger's WAL could not be synced: {e}");
                }
            }
        }
    }
}

/// Runs a call's scheduler work on a blocking thread: it takes the lock and syncs the ledger or
/// part files, which must not stall the async runtime.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, Status>
where
    T: Send + 'static,
    E: Into<Status> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Into::into)
}

fn check_version(v: u32) -> Result<(), Status> {
    if v != PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "protocol version mismatch: the worker speaks version {v}, this coordinator speaks version {PROTOCOL_VERSION}"
        )));
    }
    Ok(())
}

impl Service {
    /// Opens (or creates) the ledger in the state directory and reconciles it with the parts.
    pub fn open(cfg: CoreConfig) -> CResult<Service> {
        let (tx, _) = tokio::sync::broadcast::channel(4096);
        let wal = cfg.state_dir.join("ledger.sqlite-wal");
        let core = Core::open(cfg, tx)?;
        Ok(Service {
            core: Arc::new(Mutex::new(core)),
            sync: Arc::new(GroupSync::new(&wal)),
            wake: Arc::new(Notify::new()),
            lease_latency: Arc::default(),
        })
    }

    /// The scheduler, locked; when the guard goes, after unlocking, it waits until what the call
    /// committed is on disk (group commit), so nothing is answered before it is durable.
    pub(super) fn core(&self) -> CoreGuard<'_> {
        // A panic while holding the lock leaves state the ledger already has; keep serving.
        let core = self.core.lock().unwrap_or_else(|p| p.into_inner());
        let changes = core.ledger.total_changes();
        CoreGuard {
            core: Some(core),
            sync: &self.sync,
            changes,
        }
    }

    pub(super) fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Expires leases and finishes complete sweeps, every 100 ms, until aborted.
    pub(super) fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let svc = self.clone();
        svc.finalize_ready();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                // Expiring commits (and syncs) to the ledger: never on the async threads.
                let s = svc.clone();
                let expired = tokio::task::spawn_blocking(move || {
                    let expired = s.core().expire();
                    s.finalize_ready();
                    expired
                })
                .await;
                match expired {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => {
                        tracing::info!("{n} leases expired");
                        svc.wake();
                    }
                    Ok(Err(e)) => tracing::error!("expiring leases: {e}"),
                    Err(e) => tracing::error!("expiring leases: {e}"),
                }
            }
        })
    }

    /// Submits a spec's source; the same checks and errors as loading it for `iscp run`.
    pub fn submit_source(&self, source: &str, file: &str) -> CResult<(String, u64, u64, u64)> {
        let limit = self.core().cfg.max_spec_bytes;
        if source.len() > limit {
            return Err(CoreError::Invalid(format!(
                "{file}: the spec is {} bytes, more than this coordinator accepts ({limit}; \
                 see `iscp coordinator --max-spec-kib`): every lease carries it",
                source.len()
            )));
        }
        let ex = expand(source, file)?;
        // Listed before the lock: a resubmitted sweep's folder may hold a million parts.
        let root = self.core().results_root(&ex.sweep);
        let on_disk = PartsOnDisk::list(&root)?;
        let (total, new, done) = {
            let mut core = self.core();
            let counts =
                core.submit_listed(&ex.sweep, &ex.spec_sha, file, source, ex.units, &on_disk)?;
            core.set_class_names(&ex.sweep, ex.class_names)?;
            counts
        };
        self.wake();
        Ok((ex.sweep, total, new, done))
    }

    /// Submits `n` units of the `noop` kind as sweep `sweep` (the coordinator benchmark).
    pub fn submit_noop(&self, sweep: &str, n: usize) -> CResult<()> {
        let on_disk = PartsOnDisk::list(&self.core().results_root(sweep))?;
        self.core()
            .submit_listed(sweep, "noop", "", "", noop_units(n), &on_disk)?;
        self.wake();
        Ok(())
    }

    /// Requeues every leased unit without counting an attempt (see `Core::release_leases`).
    pub fn release_all_leases(&self) -> CResult<usize> {
        self.core().release_leases()
    }

    /// Records a failed attempt of a leased unit whose worker cannot report it itself (it crashed:
    /// `iscp run` reads the crash markers its previous process left). Stale leases are refused.
    pub fn fail_leased(
        &self,
        key: &UnitKey,
        claim: LeaseClaim,
        error: &str,
        reason: FailureReason,
    ) -> CResult<()> {
        self.core().fail(key, claim, error, reason, false)?;
        self.wake();
        Ok(())
    }

    /// Puts a sweep's failed units back in the queue with a fresh budget (`iscp retry-failed`).
    pub fn retry_failed(&self, sweep: &str) -> CResult<u64> {
        let n = self.core().retry_failed(sweep)?;
        self.wake();
        Ok(n)
    }

    /// Every sweep's status (what `iscp status` shows).
    pub fn status(&self, sweep: &str) -> Vec<super::status::SweepStatus> {
        self.core().status(sweep)
    }

    /// The latency of lease calls inside the scheduler (not the long poll's wait).
    pub fn lease_latency(&self) -> &super::LatencyLog {
        &self.lease_latency
    }

    /// A receiver of every sweep event from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.core().subscribe()
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;
type ChunkStream = Pin<Box<dyn Stream<Item = Result<ArtifactChunk, Status>> + Send>>;

#[tonic::async_trait]
impl iscp_proto::Coordinator for Service {
    async fn register_worker(
        &self,
        req: Request<RegisterWorkerParams>,
    ) -> Result<Response<RegisterWorkerResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        if r.worker_id.is_empty() {
            return Err(Status::invalid_argument("worker_id is empty"));
        }
        let svc = self.clone();
        let (id, name) = (r.worker_id.clone(), r.name.clone());
        let heartbeat = blocking(move || {
            let mut core = svc.core();
            core.register(&id, &name);
            Ok::<_, Status>(core.cfg.heartbeat)
        })
        .await?;
        tracing::info!(worker = %r.name, id = %r.worker_id, devices = r.devices.len(), "worker registered");
        Ok(Response::new(RegisterWorkerResult {
            worker_id: r.worker_id,
            heartbeat_interval_ms: heartbeat.as_millis() as u64,
            protocol_version: PROTOCOL_VERSION,
        }))
    }

    async fn lease_units(
        &self,
        req: Request<LeaseUnitsParams>,
    ) -> Result<Response<LeaseUnitsResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let held: HashSet<String> = r.held_models.into_iter().collect();
        let deadline = Instant::now() + Duration::from_millis(r.wait_ms).min(MAX_WAIT);
        loop {
            // Registered before checking, so a wake between the check and the wait is not lost.
            let woken = self.wake.notified();
            // The lease commits to the ledger (an fsync) and reads inputs: a blocking thread's work.
            let (svc, worker, device, max, want) = (
                self.clone(),
                r.worker_id.clone(),
                r.device.clone(),
                r.max_units.max(1) as usize,
                held.clone(),
            );
            let units = blocking(move || {
                let started = Instant::now();
                let mut core = svc.core();
                if !core.knows_worker(&worker) {
                    return Err(Status::not_found(format!(
                        "unknown worker {worker}: register first"
                    )));
                }
                let units = core.lease_on(&worker, &device, max, &want)?;
                drop(core);
                svc.lease_latency.record(started.elapsed());
                Ok(units)
            })
            .await?;
            if !units.is_empty() {
                return Ok(Response::new(LeaseUnitsResult {
                    units: units.into_iter().map(to_leased).collect(),
                }));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Response::new(LeaseUnitsResult { units: vec![] }));
            }
            // Backoff timers are not woken; poll at least every 250 ms.
            let _ =
                tokio::time::timeout((deadline - now).min(Duration::from_millis(250)), woken).await;
        }
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatParams>,
    ) -> Result<Response<HeartbeatResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let progress: Vec<Beat> = r
            .progress
            .into_iter()
            .map(|p| Beat {
                key: UnitKey::new(p.sweep, p.unit_id),
                attempt: p.attempt,
                step: p.step,
                total: p.total,
                checkpoint: (p.checkpoint_epoch > 0).then_some((
                    p.checkpoint_epoch,
                    p.checkpoint_sha256,
                    p.checkpoint_stats,
                )),
            })
            .collect();
        let svc = self.clone();
        let worker = r.worker_id.clone();
        // A beat may record a checkpoint in the ledger: off the async threads.
        let out = blocking(move || svc.core().heartbeat(&worker, &progress)).await?;
        Ok(Response::new(match out {
            Some(cancel) => HeartbeatResult {
                cancel: cancel.iter().map(UnitRef::from).collect(),
                register_again: false,
            },
            None => HeartbeatResult {
                cancel: vec![],
                register_again: true,
            },
        }))
    }

    async fn complete_unit(
        &self,
        req: Request<CompleteUnitParams>,
    ) -> Result<Response<CompleteUnitResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let svc = self.clone();
        // Parts are checked, written and synced without the lock; under it only the renames and
        // the ledger commit.
        let worker = r.worker_id.clone();
        let mut done = blocking(move || {
            let done = svc.complete_batch(&worker, vec![Completion::from(r)]);
            svc.finalize_ready();
            Ok::<_, Status>(done)
        })
        .await?;
        self.wake();
        done.pop().expect("one answer per unit")?;
        Ok(Response::new(CompleteUnitResult {}))
    }

    async fn complete_units(
        &self,
        req: Request<CompleteUnitsParams>,
    ) -> Result<Response<CompleteUnitsResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        if r.units.len() > MAX_BATCH_UNITS {
            return Err(Status::invalid_argument(format!(
                "{} units in one CompleteUnits call; at most {MAX_BATCH_UNITS}",
                r.units.len()
            )));
        }
        let svc = self.clone();
        let worker = r.worker_id;
        let units = blocking(move || {
            let units: Vec<Completion> = r.units.into_iter().map(Completion::from).collect();
            let keys: Vec<UnitKey> = units.iter().map(|c| c.key.clone()).collect();
            let done = svc.complete_batch(&worker, units);
            svc.finalize_ready();
            Ok::<_, Status>(
                keys.iter()
                    .zip(&done)
                    .map(|(k, d)| unit_completed(k, d))
                    .collect(),
            )
        })
        .await?;
        self.wake();
        Ok(Response::new(CompleteUnitsResult { units }))
    }

    async fn fail_unit(
        &self,
        req: Request<FailUnitParams>,
    ) -> Result<Response<FailUnitResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let reason = r.reason();
        let key = UnitKey::new(r.sweep.clone(), r.unit_id.clone());
        let svc = self.clone();
        // A failure writes its `failures` part and commits: off the async threads.
        blocking(move || {
            let claim = LeaseClaim {
                worker: &r.worker_id,
                lease_id: &r.lease_id,
                attempt: r.attempt,
            };
            svc.core()
                .fail(&key, claim, &r.error, reason, r.handed_back)?;
            svc.finalize_ready();
            Ok::<(), CoreError>(())
        })
        .await?;
        self.wake();
        Ok(Response::new(FailUnitResult {}))
    }

    type FetchArtifactStream = ChunkStream;

    async fn fetch_artifact(
        &self,
        req: Request<FetchArtifactParams>,
    ) -> Result<Response<Self::FetchArtifactStream>, Status> {
        let sha = req.into_inner().sha256;
        let svc = self.clone();
        let s = sha.clone();
        let path = blocking(move || svc.core().artifact_path(&s))
            .await?
            .ok_or_else(|| Status::not_found(format!("artifact {sha}")))?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::internal(format!("{path}: {e}")))?;
        let chunks: Vec<Result<ArtifactChunk, Status>> = bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, c)| {
                Ok(ArtifactChunk {
                    sha256: if i == 0 { sha.clone() } else { String::new() },
                    sweep: String::new(),
                    data: c.to_vec(),
                    ..Default::default()
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn fetch_part(
        &self,
        req: Request<FetchPartParams>,
    ) -> Result<Response<FetchPartResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let key = UnitKey::new(r.sweep, r.unit_id);
        let svc = self.clone();
        let path = blocking(move || svc.core().done_part(&key, &r.table)).await?;
        // Read outside the lock, without blocking the runtime.
        let parquet = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        Ok(Response::new(FetchPartResult { parquet }))
    }

    async fn put_artifact(
        &self,
        req: Request<Streaming<ArtifactChunk>>,
    ) -> Result<Response<PutArtifactResult>, Status> {
        use tokio::io::AsyncWriteExt;
        let mut stream = req.into_inner();
        let Some(first) = stream.next().await.transpose()? else {
            return Err(Status::invalid_argument("an empty upload"));
        };
        let sha = first.sha256.clone();
        if !iscp_proto::is_sha256(&sha) {
            return Err(Status::invalid_argument(format!(
                "`{}` is not a sha256 in lowercase hex",
                sha.escape_debug()
            )));
        }
        let purpose = Purpose::parse(&first.purpose)?;
        let key = UnitKey::new(first.sweep.as_str(), first.unit_id.as_str());
        // Checked against the scheduler's own names before anything touches the disk.
        let (svc, worker) = (self.clone(), first.worker_id.clone());
        let (dir, max) = blocking(move || {
            let core = svc.core();
            Ok::<_, CoreError>((
                core.upload_dir(purpose, &key, &worker)?,
                core.max_artifact_bytes(),
            ))
        })
        .await?;
        // Folders this upload creates, removed again (when empty) if it is refused.
        let created: Vec<std::path::PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.exists())
            .map(Into::into)
            .collect();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", dir.display())))?;
        let tmp = dir.join(format!(".{sha}.{:016x}.tmp", rand::random::<u64>()));
        let io = |e: std::io::Error| {
            let what = format!("{}: {e}", tmp.display());
            // A full disk is not transient to the worker: it fails the unit with the reason.
            if iscp_sweep::error::io_out_of_space(&e) {
                Status::resource_exhausted(format!("coordinator out of space: {what}"))
            } else {
                Status::internal(what)
            }
        };
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let (mut hasher, mut n) = (Sha256::new(), 0u64);
        let mut chunk = Some(first);
        let written: Result<(), Status> = async {
            while let Some(c) = chunk.take() {
                n += c.data.len() as u64;
                if n > max {
                    return Err(Status::resource_exhausted(format!(
                        "artifact {sha} is larger than the coordinator's limit of {} MiB \
                         (--max-artifact-mib)",
                        max >> 20
                    )));
                }
                hasher.update(&c.data);
                file.write_all(&c.data).await.map_err(io)?;
                chunk = stream.next().await.transpose()?;
            }
            file.sync_all().await.map_err(io)?;
            if n == 0 {
                return Err(Status::invalid_argument(format!(
                    "artifact {sha} has 0 bytes: not a model or checkpoint"
                )));
            }
            Ok(())
        }
        .await;
        let actual = hex::encode(hasher.finalize());
        let written = written.and_then(|()| {
            (actual == sha).then_some(()).ok_or_else(|| {
                Status::invalid_argument(format!("artifact announced as {sha} hashes to {actual}"))
            })
        });
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            for d in &created {
                let _ = tokio::fs::remove_dir(d).await;
            }
            return Err(e);
        }
        let path = iscp_sweep::work::artifact_path(&dir, &sha);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        let (svc, sha, p) = (
            self.clone(),
            actual.clone(),
            path.to_string_lossy().to_string(),
        );
        blocking(move || svc.core().put_artifact(&sha, &p, n)).await?;
        Ok(Response::new(PutArtifactResult {
            sha256: actual,
            bytes: n,
        }))
    }

    async fn submit_spec(
        &self,
        req: Request<SubmitSpecParams>,
    ) -> Result<Response<SubmitSpecResult>, Status> {
        let r = req.into_inner();
        let svc = self.clone();
        // Expanding may load data (to count classes): off the async threads.
        let (sweep, units, new_units, already_done) = blocking(move || {
            let submitted = svc.submit_source(&r.spec_toml, &r.file)?;
            svc.finalize_ready();
            Ok::<_, CoreError>(submitted)
        })
        .await?;
        tracing::info!(%sweep, units, new_units, "spec submitted");
        Ok(Response::new(SubmitSpecResult {
            sweep,
            units,
            new_units,
            already_done,
        }))
    }

    async fn get_status(
        &self,
        req: Request<GetStatusParams>,
    ) -> Result<Response<GetStatusResult>, Status> {
        let only = req.into_inner().sweep;
        let (svc, name) = (self.clone(), only.clone());
        // The lock may be held by a long call (a large submit): wait for it off the async threads.
        let (status, workers) = blocking(move || {
            let core = svc.core();
            Ok::<_, Status>((core.status(&name), core.workers()))
        })
        .await?;
        let sweeps: Vec<_> = status.into_iter().map(to_proto_status).collect();
        if !only.is_empty() && sweeps.is_empty() {
            return Err(Status::not_found(format!("no sweep named `{only}`")));
        }
        let workers = workers
            .into_iter()
            .map(
                |(worker_id, name, leased_units, last_seen_ms_ago)| WorkerStatus {
                    worker_id,
                    name,
                    leased_units,
                    last_seen_ms_ago,
                },
            )
            .collect();
        Ok(Response::new(GetStatusResult { sweeps, workers }))
    }

    type WatchSweepStream = EventStream;

    async fn watch_sweep(
        &self,
        req: Request<WatchSweepParams>,
    ) -> Result<Response<Self::WatchSweepStream>, Status> {
        let sweep = req.into_inner().sweep;
        let (svc, name) = (self.clone(), sweep.clone());
        // Subscribed under the same lock as the first event (the state as it is now), so no event
        // falls between them; taken off the async threads.
        let (first, rx) = blocking(move || {
            let core = svc.core();
            Ok::<_, Status>((status_event(&core, &name), core.subscribe()))
        })
        .await?;
        let Some(first) = first else {
            return Err(Status::not_found(format!("no sweep named `{sweep}`")));
        };
        let stream = watch_stream(self.clone(), first, sweep, rx);
        Ok(Response::new(stream))
    }

    async fn cancel_sweep(
        &self,
        req: Request<CancelSweepParams>,
    ) -> Result<Response<CancelSweepResult>, Status> {
        let (svc, sweep) = (self.clone(), req.into_inner().sweep);
        let cancelled = blocking(move || {
            let cancelled = svc.core().cancel(&sweep)?;
            svc.finalize_ready();
            Ok::<_, CoreError>(cancelled)
        })
        .await?;
        Ok(Response::new(CancelSweepResult { cancelled }))
    }

    async fn retry_failed(
        &self,
        req: Request<RetryFailedParams>,
    ) -> Result<Response<RetryFailedResult>, Status> {
        let (svc, sweep) = (self.clone(), req.into_inner().sweep);
        let requeued = blocking(move || svc.core().retry_failed(&sweep)).await?;
        self.wake();
        Ok(Response::new(RetryFailedResult { requeued }))
    }
}

/// A `status` event: the sweep's counts as they are now (None: no such sweep).
fn status_event(core: &super::core::Core, sweep: &str) -> Option<Event> {
    let st = core.status(sweep);
    let s = st.first()?;
    let mut e = Event {
        sweep: sweep.to_string(),
        state: EventKind::Status,
        finished: s.finished,
        ..Default::default()
    };
    for k in &s.kinds {
        e.total += k.pending + k.leased + k.done + k.failed + k.cancelled;
        e.done += k.done;
        e.failed += k.failed + k.cancelled;
        e.leased += k.leased;
    }
    Some(e)
}

/// The watch stream: the current state, then the sweep's events, ending after `finished`. A
/// watcher that fell behind (events dropped) gets a fresh `status` event, so that it can forget
/// the units whose ends it missed.
fn watch_stream(
    svc: Service,
    first: Event,
    sweep: String,
    mut rx: tokio::sync::broadcast::Receiver<Event>,
) -> EventStream {
    let (tx, out) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let done = first.finished;
        if tx.send(Ok(to_proto_event(first))).await.is_err() || done {
            return;
        }
        loop {
            match rx.recv().await {
                Ok(e) if e.sweep == sweep => {
                    let fin = e.finished && e.state == EventKind::Finished;
                    if tx.send(Ok(to_proto_event(e))).await.is_err() || fin {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let (s, name) = (svc.clone(), sweep.clone());
                    let status = blocking(move || Ok::<_, Status>(status_event(&s.core(), &name)));
                    if let Ok(Some(e)) = status.await {
                        if tx.send(Ok(to_proto_event(e))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(_) => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(out))
}
