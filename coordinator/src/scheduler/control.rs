//! Sweep control: cancel, retry the failed units, and the bookkeeping of finishing a sweep.

use super::*;
use std::path::{Path, PathBuf};

impl Scheduler {
    /// Cancels a sweep's pending and leased units.
    pub fn cancel(&mut self, sweep: &str) -> SResult<u64> {
        let changed = self.set_states(sweep, |m| {
            if !matches!(m.row.state, PENDING | LEASED) {
                return None;
            }
            m.row.error = "cancelled".into();
            Some(CANCELLED)
        })?;
        let message = format!("{} units cancelled", changed.len());
        self.emit(sweep, None, EventKind::Cancelled, message);
        Ok(changed.len() as u64)
    }

    /// Puts a sweep's failed units back in the queue with a fresh retry budget.
    pub fn retry_failed(&mut self, sweep: &str) -> SResult<u64> {
        let changed = self.set_states(sweep, |m| {
            if m.row.state != FAILED {
                return None;
            }
            m.row.failures = 0;
            m.row.expiries = 0;
            m.row.error.clear();
            m.not_before = None;
            Some(PENDING)
        })?;
        if let Some(s) = self.sweeps.get_mut(sweep) {
            s.finalized = false;
        }
        self.settle_doomed()?;
        self.ledger.set_finalized(sweep, false)?;
        let message = format!("{} units requeued", changed.len());
        self.emit(sweep, None, EventKind::Retrying, message);
        Ok(changed.len() as u64)
    }

    /// The sweeps whose units are all settled and that are not finished nor being reported on:
    /// their results folders, to write the report of before `finish_reported` (each is marked as
    /// being reported on, so it is returned once).
    pub fn reports_due(&mut self) -> SResult<Vec<(String, PathBuf)>> {
        self.settle_doomed()?;
        let mut due = Vec::new();
        for (name, s) in self.sweeps.iter_mut() {
            if s.ix.unsettled() == 0 && !s.finalized && !s.reporting {
                s.reporting = true;
                due.push(name.clone());
            }
        }
        Ok(due
            .into_iter()
            .map(|n| {
                let root = self.results_root(&n);
                (n, root)
            })
            .collect())
    }

    /// Finishes `sweep` after its report (`page`, None when it could not be written): records
    /// the fact and sends the `finished` event. A sweep extended meanwhile is not finished.
    pub fn finish_reported(&mut self, sweep: &str, page: Option<&Path>) -> SResult<bool> {
        let Some(s) = self.sweeps.get_mut(sweep) else {
            return Ok(false);
        };
        s.reporting = false;
        if s.ix.unsettled() > 0 || s.finalized {
            return Ok(false);
        }
        s.finalized = true;
        self.ledger.set_finalized(sweep, true)?;
        let mut message = format!(
            "finished; results in {}",
            self.results_root(sweep).display()
        );
        if let Some(p) = page {
            message.push_str(&format!("; report {}", p.display()));
        }
        self.emit(sweep, None, EventKind::Finished, message);
        Ok(true)
    }

    /// Finishes every sweep whose units are all settled, without a report (the scheduler's
    /// tests; the service writes reports first, see `finalize_ready`).
    pub fn finish_complete(&mut self) -> SResult<usize> {
        let mut n = 0;
        for (sweep, _) in self.reports_due()? {
            n += usize::from(self.finish_reported(&sweep, None)?);
        }
        Ok(n)
    }
}
