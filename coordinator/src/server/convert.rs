//! Domain types to wire types at the service edge: leased units, sweep status, watch events.

use crate::scheduler::status::SweepStatus;
use crate::scheduler::{Event, Leased};
use iscp_proto::v1::*;

pub fn to_proto_event(e: Event) -> WatchEvent {
    WatchEvent {
        sweep: e.sweep,
        total: e.total,
        done: e.done,
        failed: e.failed,
        leased: e.leased,
        unit_id: e.unit_id,
        kind: e.kind,
        event: e.state.into(),
        worker: e.worker,
        step: e.step,
        steps: e.steps,
        message: e.message,
        finished: e.finished,
        work_total: e.work_total,
        work_done: e.work_done,
        unit_work: e.unit_work,
        device: e.device,
        label: e.label,
    }
}

pub fn to_proto_status(s: SweepStatus) -> iscp_proto::v1::SweepStatus {
    iscp_proto::v1::SweepStatus {
        sweep: s.sweep,
        kinds: s
            .kinds
            .into_iter()
            .map(|k| KindCount {
                kind: k.kind,
                pending: k.pending,
                leased: k.leased,
                done: k.done,
                failed: k.failed,
                cancelled: k.cancelled,
            })
            .collect(),
        failures: s
            .failures
            .into_iter()
            .map(|(unit_id, kind, attempts, error)| FailureInfo {
                unit_id,
                kind,
                attempts,
                error,
            })
            .collect(),
        finished: s.finished,
        results: s.results,
    }
}

pub fn to_leased(l: Leased) -> LeasedUnit {
    LeasedUnit {
        sweep: l.sweep,
        unit_id: l.unit_id,
        kind: l.kind.into(),
        lease_id: l.lease_id,
        attempt: l.attempt,
        spec_sha256: l.spec_sha,
        spec_file: l.spec_file,
        model_sha256: l.model_sha,
        params_json: l.params,
        checkpoint_epoch: l.checkpoint.as_ref().map(|c| c.0).unwrap_or(0),
        checkpoint_sha256: l
            .checkpoint
            .as_ref()
            .map(|c| c.1.clone())
            .unwrap_or_default(),
        checkpoint_stats: l.checkpoint.map(|c| c.2).unwrap_or_default(),
        input_artifacts: l.input_artifacts,
    }
}
