//! Bookkeeping of a local run: which units are done, attempt numbers, results and failures written
//! as part files, and panics inside libtorch turned into unit failures.

use super::{Layout, RunOptions, RunSummary};
use crate::tables::{self, FailureRow};
use crate::units::Unit;
use crate::{CoordError, Result};
use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) struct Runner<'a> {
    pub layout: Layout,
    pub opts: &'a RunOptions,
    pub done: HashSet<String>,
    pub attempts: HashMap<String, i64>,
    pub summary: RunSummary,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Turns a panic inside libtorch code into an error, so one bad unit cannot stop the sweep.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(
                iscp_engine::EngineError::Invalid(format!("panicked: {}", msg.unwrap_or_default()))
                    .into(),
            )
        }
    }
}

impl Runner<'_> {
    pub fn is_done(&self, u: &Unit) -> bool {
        self.done.contains(&u.id)
    }

    pub fn attempt(&self, u: &Unit) -> i64 {
        self.attempts.get(&u.id).copied().unwrap_or(0) + 1
    }

    pub fn fail(&mut self, u: &Unit, error: &CoordError, retryable: bool) -> Result<()> {
        let attempt = self.attempt(u);
        let row = FailureRow {
            unit_id: u.id.clone(),
            unit_kind: u.kind.name().into(),
            attempt,
            worker: self.opts.worker.clone(),
            error: error.to_string(),
            retryable,
            time_ms: now_ms(),
        };
        tables::write_part(
            &self.layout.table("failures"),
            &format!("{}-a{attempt}", u.id),
            &tables::failures_batch(&[row]),
        )?;
        self.attempts.insert(u.id.clone(), attempt);
        self.opts
            .progress
            .println(&format!("failed {} {}: {error}", u.kind.name(), u.id));
        self.summary.failed += 1;
        self.opts.progress.unit_done();
        Ok(())
    }

    /// Writes a unit's rows as its part of `table`, or its failure.
    pub fn record(
        &mut self,
        u: &Unit,
        table: &str,
        out: Result<arrow_array::RecordBatch>,
        retryable: bool,
    ) -> Result<()> {
        match out {
            Ok(batch) => {
                tables::write_part(&self.layout.table(table), &u.id, &batch)?;
                self.finished(u);
                Ok(())
            }
            Err(e) => self.fail(u, &e, retryable),
        }
    }

    pub fn finished(&mut self, u: &Unit) {
        self.done.insert(u.id.clone());
        self.summary.ran += 1;
        self.opts.progress.unit_done();
    }
}
