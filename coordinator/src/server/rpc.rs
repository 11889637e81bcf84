//! The gRPC calls: wire types converted to scheduler calls and back, the protocol version
//! checked, long-polled leases; artifacts in `artifacts`, watch streams in `watch`.

use super::artifacts::ChunkStream;
use super::complete::{unit_completed, Completion};
use super::convert::{to_leased, to_proto_status};
use super::service::{blocking, Service};
use super::watch::{status_event, watch_stream, EventStream};
use crate::scheduler::{Beat, LeaseClaim, Now, SchedulerError, UnitKey};
use iscp_proto::v1::*;
use iscp_proto::{MAX_BATCH_UNITS, PROTOCOL_VERSION};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, Streaming};

/// Longest a lease call is held open waiting for work.
const MAX_WAIT: Duration = Duration::from_secs(20);

fn check_version(v: u32) -> Result<(), Status> {
    if v != PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "protocol version mismatch: the worker speaks version {v}, this coordinator speaks version {PROTOCOL_VERSION}"
        )));
    }
    Ok(())
}

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
            let mut core = svc.scheduler();
            core.register(&id, &name, Now::system());
            Ok::<_, Status>(core.config().heartbeat)
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
                let mut core = svc.scheduler();
                if !core.knows_worker(&worker) {
                    return Err(Status::not_found(format!(
                        "unknown worker {worker}: register first"
                    )));
                }
                let units = core.lease_on(&worker, &device, max, &want, Now::system())?;
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
        let out =
            blocking(move || svc.scheduler().heartbeat(&worker, &progress, Now::system())).await?;
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
            svc.scheduler()
                .fail(&key, claim, &r.error, reason, r.handed_back, Now::system())?;
            svc.finalize_ready();
            Ok::<(), SchedulerError>(())
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
        Ok(Response::new(
            self.send_artifact(req.into_inner().sha256).await?,
        ))
    }

    async fn fetch_part(
        &self,
        req: Request<FetchPartParams>,
    ) -> Result<Response<FetchPartResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let key = UnitKey::new(r.sweep, r.unit_id);
        let svc = self.clone();
        let path = blocking(move || svc.scheduler().done_part(&key, &r.table)).await?;
        // Read outside the lock, without blocking the runtime.
        let parquet = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        Ok(Response::new(FetchPartResult { parquet }))
    }

    async fn fetch_spec(
        &self,
        req: Request<FetchSpecParams>,
    ) -> Result<Response<FetchSpecResult>, Status> {
        let r = req.into_inner();
        check_version(r.protocol_version)?;
        let svc = self.clone();
        // Read from the ledger once, then kept: off the async threads either way.
        let (spec_file, spec_toml) =
            blocking(move || svc.scheduler().spec_of(&r.spec_sha256)).await?;
        Ok(Response::new(FetchSpecResult {
            spec_toml,
            spec_file,
        }))
    }

    async fn put_artifact(
        &self,
        req: Request<Streaming<ArtifactChunk>>,
    ) -> Result<Response<PutArtifactResult>, Status> {
        Ok(Response::new(
            self.receive_artifact(req.into_inner()).await?,
        ))
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
            Ok::<_, SchedulerError>(submitted)
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
            let core = svc.scheduler();
            Ok::<_, Status>((core.status(&name), core.workers(Now::system())))
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
            let core = svc.scheduler();
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
            let cancelled = svc.scheduler().cancel(&sweep)?;
            svc.finalize_ready();
            Ok::<_, SchedulerError>(cancelled)
        })
        .await?;
        Ok(Response::new(CancelSweepResult { cancelled }))
    }

    async fn retry_failed(
        &self,
        req: Request<RetryFailedParams>,
    ) -> Result<Response<RetryFailedResult>, Status> {
        let (svc, sweep) = (self.clone(), req.into_inner().sweep);
        let requeued = blocking(move || svc.scheduler().retry_failed(&sweep)).await?;
        self.wake();
        Ok(Response::new(RetryFailedResult { requeued }))
    }
}
