//! Handing out units: leases (preferring a model the worker holds, grouping units that share it,
//! each within the wire's message limit), the parts a worker may read, and heartbeats that
//! extend leases and carry progress.

use super::*;
use iscp_proto::v1::FailureReason;
use std::collections::HashSet;

impl Scheduler {
    /// Leases up to `max` ready units to `worker`: first one whose model the worker holds (else the
    /// first ready one), then more of the same kind on the same model.
    pub fn lease(
        &mut self,
        worker: &str,
        max: usize,
        held: &HashSet<String>,
        now: Now,
    ) -> SResult<Vec<Leased>> {
        self.lease_on(worker, "", max, held, now)
    }

    /// `lease`, for the worker's slot on `device` (watchers see it).
    pub fn lease_on(
        &mut self,
        worker: &str,
        device: &str,
        max: usize,
        held: &HashSet<String>,
        now: Now,
    ) -> SResult<Vec<Leased>> {
        if let Some(w) = self.workers.get_mut(worker) {
            w.last_seen = now.at;
        }
        self.promote_delayed(now);
        self.settle_doomed()?;
        let Some(lead) = self.pick_lead(held) else {
            return Ok(vec![]);
        };
        let mut picked = vec![lead.clone()];
        // Long units go one per lease, so that idle workers can take the others.
        if !self.units[&lead].row.kind.one_per_lease() {
            picked.extend(self.companions(&lead, max.max(1) - 1));
        }
        // Each unit's message is built before anything is recorded: a lease is recorded only
        // when it fits the wire's message limit. A unit that alone cannot fit fails for good.
        let expires = now.at + self.cfg.lease_ttl;
        let budget = self.cfg.max_lease_bytes;
        let mut used = 0;
        let mut out = Vec::new();
        let mut granted = Vec::new();
        let mut too_big = Vec::new();
        for key in &picked {
            let mut row = self.units[key].row.clone();
            row.attempt += 1;
            row.lease_id = format!("{:016x}", rand::random::<u64>());
            row.worker = worker.to_string();
            let unit = self.leased_unit(&row)?;
            let size = unit.wire_bytes();
            if size > budget {
                too_big.push((key.clone(), row, size));
                continue;
            }
            if used + size > budget {
                break;
            }
            used += size;
            granted.push((key.clone(), row));
            out.push(unit);
        }
        for (key, row) in &mut granted {
            self.begin_lease(key, row.clone(), Some(expires), device);
            row.state = LEASED;
        }
        let rows: Vec<&UnitRow> = granted.iter().map(|(_, r)| r).collect();
        self.ledger.update_units(&rows)?;
        if self.watched() {
            for ((key, row), unit) in granted.iter().zip(&out) {
                self.emit_leased(key, row, &unit.params);
            }
        }
        for (key, row, size) in too_big {
            let why = format!(
                "its lease would carry {size} bytes, more than a lease may ({budget}): \
                 the spec or the inputs it reads are too large"
            );
            self.begin_lease(&key, row, None, device);
            self.failed_attempt(&key, &why, FailureReason::InvalidInput, false, now)?;
        }
        Ok(out)
    }

    fn leased_unit(&mut self, row: &UnitRow) -> SResult<Leased> {
        // The spec's text is not in the lease: a worker fetches it once by hash (FetchSpec). A
        // spec the ledger lacks (a damaged ledger) fails the unit on the worker, not the lease.
        let file = match self.spec_entry(&row.spec_sha) {
            Ok((file, _)) => file.clone(),
            Err(SchedulerError::NotFound(_)) => String::new(),
            Err(e) => return Err(e),
        };
        // Units that read other units' parts (evaluations, finishing units) fetch them part by
        // part (FetchPart): nothing here touches a part file.
        let input_artifacts = match row.kind {
            UnitKind::PrepareModel => self.derived_inputs(row)?,
            _ => vec![],
        };
        Ok(Leased {
            input_artifacts,
            sweep: row.sweep.clone(),
            unit_id: row.id.clone(),
            kind: row.kind,
            lease_id: row.lease_id.clone(),
            attempt: row.attempt,
            spec_sha: row.spec_sha.clone(),
            spec_file: file,
            params: self.ledger.params(&row.id)?.unwrap_or_default(),
            model_sha: self
                .models
                .get(&UnitKey::new(row.sweep.as_str(), row.prepare_id.as_str()))
                .cloned()
                .unwrap_or_default(),
            checkpoint: self
                .checkpoints
                .get(&UnitKey::new(row.sweep.as_str(), row.id.as_str()))
                .cloned(),
        })
    }

    /// Where the part of `table` of a done unit is, for a worker to read (FetchPart): only a unit
    /// of that sweep, done, whose kind writes that table; the path is built from the unit's own id.
    pub fn done_part(&self, key: &Key, table: &str) -> SResult<PathBuf> {
        let not = |why: &str| {
            SchedulerError::NotFound(format!(
                "part `{}` of unit {} of sweep {}: {why}",
                table.escape_debug(),
                key.unit.escape_debug(),
                key.sweep.escape_debug()
            ))
        };
        let Some(m) = self.units.get(key) else {
            return Err(not("no such unit"));
        };
        let Some(t) = m.row.kind.tables().iter().find(|t| t.name() == table) else {
            return Err(not("its kind writes no such table"));
        };
        if m.row.state != DONE {
            return Err(not("the unit is not done"));
        }
        Ok(t.part(&self.results_root(&m.row.sweep), &m.row.id))
    }

    /// Extends the leases the worker reports holding and records progress; returns the units it should drop
    /// (cancelled, or no longer its lease), or None when the worker must register again. Each
    /// report names its sweep: units of two sweeps that share an id never answer for each other.
    pub fn heartbeat(
        &mut self,
        worker: &str,
        progress: &[Beat],
        now: Now,
    ) -> SResult<Option<Vec<Key>>> {
        let Some(w) = self.workers.get_mut(worker) else {
            return Ok(None);
        };
        w.last_seen = now.at;
        // Only the leases the worker reports are extended: a lease recorded but never delivered
        // (the coordinator died between its commit and its answer) is not the worker's, and must
        // expire rather than be kept alive by the worker's other beats.
        let expires = now.at + self.cfg.lease_ttl;
        let mut cancel = Vec::new();
        for b in progress {
            let Some(m) = self.units.get(&b.key) else {
                cancel.push(b.key.clone());
                continue;
            };
            let this_lease = m.row.worker == worker && m.row.attempt == b.attempt;
            if this_lease && m.row.state == DONE {
                // Completed by this very lease while the beat was on its way: nothing to stop.
                continue;
            }
            if !(this_lease && m.row.state == LEASED) {
                cancel.push(b.key.clone());
                continue;
            }
            self.units.get_mut(&b.key).expect("found").expires = Some(expires);
            if let Some(c) = &b.checkpoint {
                self.record_checkpoint(&b.key, c.clone())?;
            }
            let m = self.units.get_mut(&b.key).expect("found");
            if m.progress != (b.step, b.total) {
                m.progress = (b.step, b.total);
                let row = m.row.clone();
                self.emit_step(&b.key, &row, b.step, b.total);
            }
        }
        Ok(Some(cancel))
    }
}

/// One held unit's progress in a heartbeat.
#[derive(Debug, Clone)]
pub struct Beat {
    pub key: Key,
    /// The attempt the worker holds: progress of an older lease cancels it.
    pub attempt: u64,
    pub step: u64,
    pub total: u64,
    /// A training checkpoint already uploaded, to record.
    pub checkpoint: Option<Checkpoint>,
}
