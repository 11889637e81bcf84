//! Where a worker's artifact upload may go: a trained model into its sweep's results, a training
//! checkpoint into the state folder; only for a sweep the coordinator knows and a training unit
//! leased to the uploading worker, so no name from the wire ever builds a path by itself.

use super::*;
use std::path::PathBuf;

/// What an upload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A trained model, kept with the sweep's results (`artifacts/`).
    Model,
    /// A training checkpoint, kept in the state folder until its unit is done.
    Checkpoint,
}

impl Purpose {
    pub fn parse(s: &str) -> SResult<Purpose> {
        match s {
            "model" => Ok(Purpose::Model),
            "checkpoint" => Ok(Purpose::Checkpoint),
            other => Err(SchedulerError::Invalid(format!(
                "unknown artifact purpose `{}` (model or checkpoint)",
                other.escape_debug()
            ))),
        }
    }
}

impl Scheduler {
    /// The folder an upload from `worker` for the unit `key` goes to, or why it is refused.
    pub fn upload_dir(&self, purpose: Purpose, key: &Key, worker: &str) -> SResult<PathBuf> {
        let named = || {
            format!(
                "unit {} of sweep {}",
                key.unit.escape_debug(),
                key.sweep.escape_debug()
            )
        };
        if !self.sweeps.contains_key(key.sweep.as_str()) {
            return Err(SchedulerError::NotFound(format!(
                "sweep {}",
                key.sweep.escape_debug()
            )));
        }
        let Some(m) = self.units.get(key) else {
            return Err(SchedulerError::NotFound(named()));
        };
        if m.row.kind != UnitKind::PrepareModel {
            return Err(SchedulerError::Invalid(format!(
                "{} is not a training unit: it uploads no model",
                named()
            )));
        }
        if m.row.state != LEASED || m.row.worker != worker {
            return Err(SchedulerError::Stale(format!(
                "{} is not leased to worker {}",
                named(),
                worker.escape_debug()
            )));
        }
        Ok(match purpose {
            Purpose::Model => self.results_root(&m.row.sweep).join("artifacts"),
            Purpose::Checkpoint => self.checkpoint_dir(&m.row.sweep, &m.row.id),
        })
    }

    pub fn max_artifact_bytes(&self) -> u64 {
        self.cfg.max_artifact_bytes
    }
}
