//! What comes back from a lease when it does not complete: failed attempts retried with backoff up
//! to the limit, dependents of failed units settled, expiries (completions: `completion`).

use super::*;
use iscp_proto::v1::FailureReason;
use iscp_sweep::tables::FailureRow;

impl Scheduler {
    /// Checks that `worker` holds the current lease (`lease_id`, `attempt`) of the unit.
    pub fn fenced(&self, key: &Key, claim: LeaseClaim) -> SResult<()> {
        let LeaseClaim {
            worker,
            lease_id,
            attempt,
        } = claim;
        let Some(m) = self.units.get(key) else {
            return Err(SchedulerError::NotFound(format!(
                "unit {} of sweep {}",
                key.unit, key.sweep
            )));
        };
        let r = &m.row;
        if r.state != LEASED || r.attempt != attempt || r.lease_id != lease_id || r.worker != worker
        {
            return Err(SchedulerError::Stale(format!(
                "unit {} attempt {attempt} is not the current lease (state {}, current attempt {})",
                key.unit, r.state, r.attempt
            )));
        }
        Ok(())
    }

    /// Records a failed attempt: retried with backoff up to the limit, or failed for good when
    /// its `reason` says another attempt cannot help. A unit `handed_back` by a stopping worker is
    /// requeued without counting an attempt.
    pub fn fail(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        error: &str,
        reason: FailureReason,
        handed_back: bool,
        now: Now,
    ) -> SResult<()> {
        self.fenced(key, claim)?;
        self.failed_attempt(key, error, reason, handed_back, now)
    }

    pub(super) fn failed_attempt(
        &mut self,
        key: &Key,
        error: &str,
        reason: FailureReason,
        handed_back: bool,
        now: Now,
    ) -> SResult<()> {
        let retryable = reason.retryable();
        let expired = reason == FailureReason::LeaseExpired;
        let max = self.cfg.max_attempts;
        let max_expiries = self.cfg.max_expiries;
        let backoff = self.cfg.backoff_base;
        let backoff_max = self.cfg.backoff_max;
        let root = self.results_root(&key.sweep);
        let m = self.units.get_mut(key).expect("caller checked");
        let worker = m.row.worker.clone();
        let (event, next) = if handed_back {
            m.not_before = None;
            (EventKind::HandedBack, PENDING)
        } else {
            // A lease that expired says its worker died, not that the unit is bad: counted apart,
            // against a larger budget, and requeued without backoff.
            if expired {
                m.row.expiries += 1;
            } else {
                m.row.failures += 1;
            }
            let row = FailureRow {
                unit_id: key.unit.to_string(),
                unit_kind: m.row.kind.to_string(),
                attempt: m.row.attempt as i64,
                worker: worker.clone(),
                error: error.to_string(),
                reason: reason.name().to_string(),
                retryable,
                time_ms: now.unix_ms,
            };
            // The failures table is the record; the unit's state is the ledger's. A row that
            // cannot be written (a full disk) must not leave the unit leased with no lease to
            // expire: the attempt still counts, with the reason kept in the ledger.
            m.row.error = error.to_string();
            if let Err(e) = tables::write_part(
                &Table::Failures.dir(&root),
                &format!("{}-a{}", key.unit, m.row.attempt),
                &tables::failures_batch(&[row]),
            ) {
                tracing::error!("unit {}: its failures row was not written: {e}", key.unit);
            }
            if !retryable || m.row.failures >= max || m.row.expiries >= max_expiries {
                (EventKind::Failed, FAILED)
            } else if expired {
                m.not_before = None;
                (EventKind::Retrying, PENDING)
            } else {
                let wait = backoff.saturating_mul(1 << (m.row.failures - 1).min(16));
                m.not_before = Some(now.at + wait.min(backoff_max));
                (EventKind::Retrying, PENDING)
            }
        };
        m.row.lease_id.clear();
        self.set_state(key, next);
        let row = self.units[key].row.clone();
        self.ledger.update_unit(&row)?;
        self.emit(&key.sweep, Some(&row), event, error.to_string());
        self.settle_doomed()
    }

    /// Fails a unit that can never run (its dependency failed) without counting an attempt.
    pub(super) fn settle_failed(&mut self, key: &Key, why: String) -> SResult<()> {
        let m = self.units.get_mut(key).expect("exists");
        m.row.error = why.clone();
        self.set_state(key, FAILED);
        let row = self.units[key].row.clone();
        self.ledger.update_unit(&row)?;
        self.emit(&key.sweep, Some(&row), EventKind::Failed, why);
        Ok(())
    }

    /// Returns the expired leases to the queue, each counted as a failed attempt.
    pub fn expire(&mut self, now: Now) -> SResult<usize> {
        let expired: Vec<Key> = self
            .leased
            .keys()
            .filter(|k| self.units[*k].expires.is_some_and(|t| t <= now.at))
            .cloned()
            .collect();
        for key in &expired {
            let worker = self.units[key].row.worker.clone();
            let name = self
                .workers
                .get(&worker)
                .map(|w| w.name.clone())
                .unwrap_or(worker);
            let msg = format!("lease expired: worker {name} stopped heartbeating");
            self.failed_attempt(key, &msg, FailureReason::LeaseExpired, false, now)?;
        }
        Ok(expired.len())
    }
}
