//! Reporting a lease's results to the coordinator: units that finished together with nothing to
//! upload first go in CompleteUnits calls (one group commit and one answer for the batch); a unit
//! with a model to upload, a failure, or a result the batch refused goes on its own.

use crate::artifacts;
use crate::executor::{Failure, Outcome, Output};
use crate::retry::{is_transient, said_aloud, Backoff};
use crate::shared::{key_of, Shared};
use iscp_proto::v1::{
    CompleteUnitParams, CompleteUnitsParams, FailUnitParams, FailureReason, LeasedUnit, OutputFile,
    TablePart,
};
use iscp_proto::{MAX_BATCH_UNITS, PROTOCOL_VERSION};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tonic::Code;

/// Bytes of parts and files one CompleteUnits call carries at most (the wire allows 64 MiB).
const BATCH_BYTES: usize = 16 << 20;

/// Reports every unit of a lease: the results that can go together in as few CompleteUnits calls
/// as the limits allow, the others one by one.
pub async fn report_all(shared: &Shared, units: &[LeasedUnit], outcomes: Vec<Outcome>) {
    let mut together: Vec<(&LeasedUnit, Output)> = Vec::new();
    let mut alone: Vec<(&LeasedUnit, Outcome)> = Vec::new();
    for (u, outcome) in units.iter().zip(outcomes) {
        match outcome {
            Ok(out) if out.artifact.is_none() && !cancelled(shared, u) => together.push((u, out)),
            other => alone.push((u, other)),
        }
    }
    if together.len() == 1 {
        let (u, out) = together.pop().expect("one");
        alone.push((u, Ok(out)));
    }
    let mut group = Vec::new();
    let mut bytes = 0;
    for (u, out) in together {
        let size = output_bytes(&out);
        if !group.is_empty() && (group.len() == MAX_BATCH_UNITS || bytes + size > BATCH_BYTES) {
            complete_together(shared, std::mem::take(&mut group)).await;
            bytes = 0;
        }
        bytes += size;
        group.push((u, out));
    }
    if !group.is_empty() {
        complete_together(shared, group).await;
    }
    for (u, outcome) in alone {
        report(shared, u, outcome).await;
    }
}

/// Roughly the bytes `out` adds to a CompleteUnits call.
fn output_bytes(out: &Output) -> usize {
    let parts: usize = out.parts.iter().map(|(t, b)| t.len() + b.len()).sum();
    let files: usize = out.files.iter().map(|(p, b)| p.len() + b.len()).sum();
    parts + files + 512
}

/// Whether the worker was told to drop unit `u` (cancelled or leased elsewhere).
fn cancelled(shared: &Shared, u: &LeasedUnit) -> bool {
    shared.held().get(&key_of(u)).is_some_and(|h| h.cancelled)
}

/// One CompleteUnits call for `group`, retried while the coordinator is away; each unit's answer
/// is handled as CompleteUnit's would be.
async fn complete_together(shared: &Shared, group: Vec<(&LeasedUnit, Output)>) {
    let req = CompleteUnitsParams {
        protocol_version: PROTOCOL_VERSION,
        worker_id: shared.worker_id.clone(),
        units: group
            .iter()
            .map(|(u, out)| complete_params(shared, u, out))
            .collect(),
    };
    let mut backoff = Backoff::new();
    let answers = loop {
        match shared.client.clone().complete_units(req.clone()).await {
            Ok(r) => break r.into_inner().units,
            Err(s) if is_transient(&s) => {
                tracing::debug!("reporting {} units: {s}; retrying", group.len());
                backoff.wait().await;
                if backoff_exhausted(&backoff) && shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
            }
            // The call as a whole was refused: each unit on its own, with its own answer.
            Err(s) => {
                tracing::warn!("reporting {} units together: {s}; one by one", group.len());
                break Vec::new();
            }
        }
    };
    if answers.len() != group.len() {
        for (u, out) in group {
            report(shared, u, Ok(out)).await;
        }
        return;
    }
    for ((u, out), a) in group.into_iter().zip(answers) {
        match Code::from(a.code) {
            Code::Ok => {
                shared.completed.fetch_add(1, Ordering::SeqCst);
                tracing::info!("completed {} {}", u.kind(), u.unit_id);
            }
            // The same as CompleteUnit: a result that does not fit is reported failed, so the
            // lease ends now with the reason on record; one the coordinator could not write is
            // sent again on its own.
            Code::InvalidArgument | Code::ResourceExhausted => {
                report(shared, u, Err(refused_result(u, &a.message))).await;
            }
            code if is_transient(&tonic::Status::new(code, "")) => {
                report(shared, u, Ok(out)).await;
            }
            _ => tracing::warn!(
                "the coordinator refused the result of {}: {}",
                u.unit_id,
                a.message
            ),
        }
    }
}

/// The CompleteUnit request carrying `out`, the result of unit `u`.
fn complete_params(shared: &Shared, u: &LeasedUnit, out: &Output) -> CompleteUnitParams {
    CompleteUnitParams {
        protocol_version: PROTOCOL_VERSION,
        worker_id: shared.worker_id.clone(),
        sweep: u.sweep.clone(),
        unit_id: u.unit_id.clone(),
        lease_id: u.lease_id.clone(),
        attempt: u.attempt,
        model_sha256: out.model_sha256.clone().unwrap_or_default(),
        parts: out
            .parts
            .iter()
            .map(|(t, b)| TablePart {
                table: t.clone(),
                parquet: b.clone(),
            })
            .collect(),
        files: out
            .files
            .iter()
            .map(|(path, data)| OutputFile {
                path: path.clone(),
                data: data.clone(),
            })
            .collect(),
    }
}

/// Sends a unit's result (uploading its model first) or its failure; retries while the
/// coordinator is away, gives up when it refuses (a stale lease: the unit went to someone else).
pub(crate) async fn report(shared: &Shared, u: &LeasedUnit, outcome: Outcome) {
    if cancelled(shared, u) {
        tracing::info!(
            "dropping the result of {}: cancelled or leased elsewhere",
            u.unit_id
        );
        return;
    }
    let mut outcome = upload_model(shared, u, outcome).await;
    let mut backoff = Backoff::new();
    let mut tries = 0u32;
    loop {
        tries += 1;
        let sent = send_once(shared, u, &outcome).await;
        match sent {
            Ok(()) => {
                count_reported(shared, u, outcome.is_ok());
                return;
            }
            // The same codes as every other call: the coordinator is away, not refusing.
            Err(s) if is_transient(&s) => {
                if !keep_trying(u, outcome.is_err(), tries, &s) {
                    return;
                }
                backoff.wait().await;
                if backoff_exhausted(&backoff) && shared.stopping.load(Ordering::SeqCst) {
                    return;
                }
            }
            // A result refused as invalid (its parts do not fit the tables), or one the
            // coordinator has no room to store: report the unit failed with the reason, so the
            // lease ends now, the attempt counts and the reason is on record.
            Err(s)
                if outcome.is_ok()
                    && matches!(
                        s.code(),
                        tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted
                    ) =>
            {
                outcome = Err(refused_result(u, s.message()));
            }
            Err(s) => {
                tracing::warn!(
                    "the coordinator refused the {} of {}: {}",
                    if outcome.is_ok() { "result" } else { "failure" },
                    u.unit_id,
                    s.message()
                );
                return;
            }
        }
    }
}

/// Uploads the model of a result that has one, retrying while the coordinator is away; an upload
/// it refuses turns the outcome into a transport failure.
async fn upload_model(shared: &Shared, u: &LeasedUnit, mut outcome: Outcome) -> Outcome {
    if let Ok(out) = &outcome {
        if let Some((sha, path)) = &out.artifact {
            let mut backoff = Backoff::new();
            loop {
                match artifacts::put(
                    &shared.client,
                    &shared.worker_id,
                    &key_of(u),
                    sha,
                    path,
                    "model",
                )
                .await
                {
                    Ok(()) => break,
                    Err(s) if is_transient(&s) => backoff.wait().await,
                    Err(s) => {
                        outcome = Err(Failure::new(
                            FailureReason::Transport,
                            format!("uploading model {sha}: {}", s.message()),
                        ));
                        break;
                    }
                }
            }
        }
    }
    outcome
}

/// One CompleteUnit call for a result, or one FailUnit call for a failure.
async fn send_once(
    shared: &Shared,
    u: &LeasedUnit,
    outcome: &Outcome,
) -> Result<(), tonic::Status> {
    match outcome {
        Ok(out) => {
            let req = complete_params(shared, u, out);
            shared.client.clone().complete_unit(req).await.map(|_| ())
        }
        Err(f) => {
            let req = FailUnitParams {
                protocol_version: PROTOCOL_VERSION,
                worker_id: shared.worker_id.clone(),
                sweep: u.sweep.clone(),
                unit_id: u.unit_id.clone(),
                lease_id: u.lease_id.clone(),
                attempt: u.attempt,
                error: f.error.clone(),
                reason: f.reason.into(),
                handed_back: false,
            };
            shared.client.clone().fail_unit(req).await.map(|_| ())
        }
    }
}

/// Counts and logs a result (`ok`) or a failure the coordinator took.
fn count_reported(shared: &Shared, u: &LeasedUnit, ok: bool) {
    let counter = if ok {
        &shared.completed
    } else {
        &shared.failed
    };
    counter.fetch_add(1, Ordering::SeqCst);
    tracing::info!(
        "{} {} {}",
        if ok { "completed" } else { "failed" },
        u.kind(),
        u.unit_id
    );
}

/// Logs a report the coordinator could not take (it is away); false when it is a `failure` tried
/// too often, to be given up.
fn keep_trying(u: &LeasedUnit, failure: bool, tries: u32, s: &tonic::Status) -> bool {
    // Said at warn, not only at debug: a coordinator that stays away is news.
    if said_aloud(tries) {
        tracing::warn!("reporting {} (try {tries}): {s}; retrying", u.unit_id);
    } else {
        tracing::debug!("reporting {}: {s}; retrying", u.unit_id);
    }
    // A failure is not resent forever: after this many tries its lease is left to
    // expire, and the coordinator requeues the unit (a result is kept trying: the
    // coordinator may be restarting, and the work is done).
    if failure && tries >= MAX_FAILURE_REPORTS {
        tracing::error!(
            "gave up reporting the failure of {} after {tries} tries: {s}; its lease \
             will expire",
            u.unit_id
        );
        return false;
    }
    true
}

/// Logs a result the coordinator refused (invalid, or no room for it) and returns the failure to
/// report in its place.
fn refused_result(u: &LeasedUnit, message: &str) -> Failure {
    tracing::warn!(
        "the coordinator refused the result of {}: {}",
        u.unit_id,
        message
    );
    Failure::new(
        FailureReason::Internal,
        format!("the coordinator refused the result: {message}"),
    )
}

/// Tries of one failure report before its lease is left to expire (about 5 minutes of backoff).
const MAX_FAILURE_REPORTS: u32 = 60;

fn backoff_exhausted(b: &Backoff) -> bool {
    b.0 >= Duration::from_secs(5)
}

/// Reports the units that crashed an earlier worker process on this cache (see `crash`) as
/// failed attempts of their own, under the lease the crashed process held. A lease that has
/// expired since is refused as stale: the coordinator already counted it.
pub(crate) async fn crashes(shared: &Shared) {
    for c in crate::crash::take_crashed(&shared.opts.cache) {
        let req = FailUnitParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: c.worker_id.clone(),
            sweep: c.sweep.clone(),
            unit_id: c.unit_id.clone(),
            lease_id: c.lease_id.clone(),
            attempt: c.attempt,
            error: c.message("a fatal signal"),
            reason: FailureReason::Internal.into(),
            handed_back: false,
        };
        match shared.client.clone().fail_unit(req).await {
            Ok(_) => tracing::warn!(
                "{} {} crashed the previous worker process: reported as a failed attempt",
                c.kind,
                c.unit_id
            ),
            Err(s) => tracing::info!(
                "{} {} crashed the previous worker process; its lease is no longer current: {}",
                c.kind,
                c.unit_id,
                s.message()
            ),
        }
    }
}
