//! Sweep control: cancel, retry the failed units, and the bookkeeping of finishing a sweep.

use super::core::*;
use super::ledger::UnitRow;
use super::*;

impl Core {
    /// Applies `change` to every unit of a sweep; the units it changed (it returns true) are
    /// written to the ledger in one transaction and returned.
    fn change_units(
        &mut self,
        sweep: &str,
        mut change: impl FnMut(&mut UnitMem) -> bool,
    ) -> CResult<Vec<Key>> {
        let Some(s) = self.sweeps.get(sweep) else {
            return Err(CoreError::NotFound(format!("sweep {sweep}")));
        };
        let keys: Vec<Key> = s
            .order
            .iter()
            .map(|id| UnitKey::new(sweep, id.as_str()))
            .collect();
        let changed: Vec<Key> = keys
            .into_iter()
            .filter(|k| change(self.units.get_mut(k).expect("sweep units exist")))
            .collect();
        let rows: Vec<&UnitRow> = changed.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        self.rebuild_index(sweep);
        Ok(changed)
    }

    /// Cancels a sweep's pending and leased units.
    pub fn cancel(&mut self, sweep: &str) -> CResult<u64> {
        let changed = self.change_units(sweep, |m| {
            if !matches!(m.row.state, PENDING | LEASED) {
                return false;
            }
            m.row.state = CANCELLED;
            m.row.error = "cancelled".into();
            m.expires = None;
            true
        })?;
        for k in &changed {
            self.leased.remove(k);
        }
        let message = format!("{} units cancelled", changed.len());
        self.emit(sweep, None, EventKind::Cancelled, message);
        Ok(changed.len() as u64)
    }

    /// Puts a sweep's failed units back in the queue with a fresh retry budget.
    pub fn retry_failed(&mut self, sweep: &str) -> CResult<u64> {
        let changed = self.change_units(sweep, |m| {
            if m.row.state != FAILED {
                return false;
            }
            m.row.state = PENDING;
            m.row.failures = 0;
            m.row.expiries = 0;
            m.row.error.clear();
            m.not_before = None;
            true
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

    /// Marks every sweep whose units are all settled (its finishing units too) as finished, once,
    /// with the `finished` event; returns how many it marked.
    pub fn finish_complete(&mut self) -> CResult<usize> {
        self.settle_doomed()?;
        let mut ready = Vec::new();
        for (name, s) in self.sweeps.iter_mut() {
            if s.ix.unsettled() == 0 && !s.finalized {
                s.finalized = true;
                ready.push(name.clone());
            }
        }
        for sweep in &ready {
            self.ledger.set_finalized(sweep, true)?;
            let message = format!(
                "finished; results in {}",
                self.results_root(sweep).display()
            );
            self.emit(sweep, None, EventKind::Finished, message);
        }
        Ok(ready.len())
    }
}
