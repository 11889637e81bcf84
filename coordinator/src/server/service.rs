//! The coordinator service: the scheduler behind one lock, shared by every call; each call's
//! scheduler work runs on a blocking thread and is answered only once the ledger's commit is on
//! disk (`SchedulerGuard`). The calls the in-process runner makes directly are here too.

use super::durable::GroupSync;
use super::latency::LatencyLog;
use crate::scheduler::status::SweepStatus;
use crate::scheduler::{
    expand, noop_units, Event, LeaseClaim, Now, PartsOnDisk, SResult, Scheduler, SchedulerConfig,
    SchedulerError, SpecText, UnitKey,
};
use iscp_proto::v1::FailureReason;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tonic::Status;

/// The coordinator service; cheap to clone (shared state).
#[derive(Clone)]
pub struct Service {
    scheduler: Arc<Mutex<Scheduler>>,
    /// The ledger's group commit: every call is answered only once its commit is on disk.
    sync: Arc<GroupSync>,
    pub(super) wake: Arc<Notify>,
    /// How long each lease took in the scheduler (lock, choice, ledger commit).
    pub(super) lease_latency: Arc<LatencyLog>,
}

/// The locked scheduler of one call (see `Service::core`).
pub(super) struct SchedulerGuard<'a> {
    core: Option<MutexGuard<'a, Scheduler>>,
    sync: &'a GroupSync,
    changes: u64,
}

impl std::ops::Deref for SchedulerGuard<'_> {
    type Target = Scheduler;
    fn deref(&self) -> &Scheduler {
        self.core.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for SchedulerGuard<'_> {
    fn deref_mut(&mut self) -> &mut Scheduler {
        self.core.as_mut().expect("held until dropped")
    }
}

impl Drop for SchedulerGuard<'_> {
    fn drop(&mut self) {
        let Some(core) = self.core.take() else {
            return;
        };
        // Numbered under the lock, so commit order and numbers agree.
        let seq = (core.ledger_changes() != self.changes).then(|| self.sync.written());
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
pub(super) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Status>
where
    T: Send + 'static,
    E: Into<Status> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Into::into)
}

impl Service {
    /// Opens (or creates) the ledger in the state directory and reconciles it with the parts.
    pub fn open(cfg: SchedulerConfig) -> SResult<Service> {
        let (tx, _) = tokio::sync::broadcast::channel(4096);
        let wal = cfg.state_dir.join("ledger.sqlite-wal");
        let core = Scheduler::open(cfg, tx, Now::system())?;
        Ok(Service {
            scheduler: Arc::new(Mutex::new(core)),
            sync: Arc::new(GroupSync::new(&wal)),
            wake: Arc::new(Notify::new()),
            lease_latency: Arc::default(),
        })
    }

    /// The scheduler, locked; when the guard goes, after unlocking, it waits until what the call
    /// committed is on disk (group commit), so nothing is answered before it is durable.
    pub(super) fn scheduler(&self) -> SchedulerGuard<'_> {
        // A panic while holding the lock leaves state the ledger already has; keep serving.
        let core = self.scheduler.lock().unwrap_or_else(|p| p.into_inner());
        let changes = core.ledger_changes();
        SchedulerGuard {
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
                    let expired = s.scheduler().expire(Now::system());
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
    pub fn submit_source(&self, source: &str, file: &str) -> SResult<(String, u64, u64, u64)> {
        let limit = self.scheduler().config().max_spec_bytes;
        if source.len() > limit {
            return Err(SchedulerError::Invalid(format!(
                "{file}: the spec is {} bytes, more than this coordinator accepts ({limit}; \
                 see `iscp coordinator --max-spec-kib`): every worker fetches it",
                source.len()
            )));
        }
        let time_on = self.scheduler().config().time_models_on.clone();
        let ex = expand(source, file, time_on.as_deref())?;
        // Listed before the lock: a resubmitted sweep's folder may hold a million parts.
        let root = self.scheduler().results_root(&ex.sweep);
        let on_disk = PartsOnDisk::list(&root)?;
        let (total, new, done) = {
            let mut core = self.scheduler();
            let spec = SpecText {
                sha: &ex.spec_sha,
                file,
                source,
            };
            let counts = core.submit_listed(&ex.sweep, spec, ex.units, &on_disk, Now::system())?;
            core.set_class_names(&ex.sweep, ex.class_names)?;
            counts
        };
        self.wake();
        Ok((ex.sweep, total, new, done))
    }

    /// Submits `n` units of the `noop` kind as sweep `sweep` (the coordinator benchmark).
    pub fn submit_noop(&self, sweep: &str, n: usize) -> SResult<()> {
        let on_disk = PartsOnDisk::list(&self.scheduler().results_root(sweep))?;
        let spec = SpecText {
            sha: "noop",
            file: "",
            source: "",
        };
        self.scheduler()
            .submit_listed(sweep, spec, noop_units(n), &on_disk, Now::system())?;
        self.wake();
        Ok(())
    }

    /// Requeues every leased unit without counting an attempt (see `Scheduler::release_leases`).
    pub fn release_all_leases(&self) -> SResult<usize> {
        self.scheduler().release_leases()
    }

    /// Records a failed attempt of a leased unit whose worker cannot report it itself (it crashed:
    /// `iscp run` reads the crash markers its previous process left). Stale leases are refused.
    pub fn fail_leased(
        &self,
        key: &UnitKey,
        claim: LeaseClaim,
        error: &str,
        reason: FailureReason,
    ) -> SResult<()> {
        self.scheduler()
            .fail(key, claim, error, reason, false, Now::system())?;
        self.wake();
        Ok(())
    }

    /// Puts a sweep's failed units back in the queue with a fresh budget (`iscp retry-failed`).
    pub fn retry_failed(&self, sweep: &str) -> SResult<u64> {
        let n = self.scheduler().retry_failed(sweep)?;
        self.wake();
        Ok(n)
    }

    /// Every sweep's status (what `iscp status` shows).
    pub fn status(&self, sweep: &str) -> Vec<SweepStatus> {
        self.scheduler().status(sweep)
    }

    /// The latency of lease calls inside the scheduler (not the long poll's wait).
    pub fn lease_latency(&self) -> &LatencyLog {
        &self.lease_latency
    }

    /// A receiver of every sweep event from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.scheduler().subscribe()
    }
}
