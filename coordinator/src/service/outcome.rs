//! What comes back from a lease: completions written as parts and committed with the unit, failed
//! attempts retried with backoff up to the limit, dependents of failed units settled, expiries.

use super::core::*;
use super::*;
use iscp_proto::v1::FailureReason;
use iscp_sweep::part_check::{check_part, PartOwner};
use iscp_sweep::tables::{self, FailureRow};
use iscp_sweep::work::{refuse_output_path, write_output_file, Files};
use std::time::Instant;

impl Core {
    /// Checks that `worker` holds the current lease (`lease_id`, `attempt`) of the unit.
    pub(super) fn fenced(&self, key: &Key, claim: LeaseClaim) -> CResult<()> {
        let LeaseClaim {
            worker,
            lease_id,
            attempt,
        } = claim;
        let Some(m) = self.units.get(key) else {
            return Err(CoreError::NotFound(format!(
                "unit {} of sweep {}",
                key.unit, key.sweep
            )));
        };
        let r = &m.row;
        if r.state != LEASED || r.attempt != attempt || r.lease_id != lease_id || r.worker != worker
        {
            return Err(CoreError::Stale(format!(
                "unit {} attempt {attempt} is not the current lease (state {}, current attempt {})",
                key.unit, r.state, r.attempt
            )));
        }
        Ok(())
    }

    /// Writes a unit's parts and marks it done, if the caller holds its current lease. A prepare
    /// unit names its model's sha256 (`model_sha`): what its searches will load.
    pub fn complete(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        parts: Vec<(String, Vec<u8>)>,
        model_sha: Option<&str>,
    ) -> CResult<()> {
        self.complete_with_files(key, claim, parts, model_sha, vec![])
    }

    /// `complete`, with the files a pictures unit made (paths relative to the sweep's results
    /// folder, checked before anything is written).
    pub fn complete_with_files(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        parts: Vec<(String, Vec<u8>)>,
        model_sha: Option<&str>,
        files: Files,
    ) -> CResult<()> {
        self.fenced(key, claim)?;
        let owner = self.part_owner(key)?;
        let checked = check_parts(key, &owner, parts, model_sha)?;
        let staged = checked.stage(&self.results_root(&key.sweep))?;
        for dir in self.complete_checked(key, claim, staged, files)? {
            tables::sync_dir(&dir)?;
        }
        Ok(())
    }

    /// What a completion of this unit is checked against: its kind and the units it read.
    pub fn part_owner(&self, key: &Key) -> CResult<PartsOf> {
        let Some(m) = self.units.get(key) else {
            return Err(CoreError::NotFound(format!(
                "unit {} of sweep {}",
                key.unit, key.sweep
            )));
        };
        Ok(PartsOf {
            kind: m.row.kind,
            reads: m.row.deps.clone(),
        })
    }

    /// Publishes staged parts (checked and written without the scheduler's lock: `check_parts`,
    /// `CheckedParts::stage`) and writes the files of a pictures unit, and marks the unit done, if
    /// the caller holds its current lease. Returns the table folders whose renames the caller
    /// syncs before answering (a done unit whose part a crash lost is requeued on restart).
    pub fn complete_checked(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        checked: StagedParts,
        files: Files,
    ) -> CResult<Vec<std::path::PathBuf>> {
        self.fenced(key, claim)?;
        if &checked.unit != key {
            return Err(CoreError::Invalid(format!(
                "parts checked for unit {} cannot complete unit {}",
                checked.unit.unit, key.unit
            )));
        }
        let kind = self.units[key].row.kind;
        let StagedParts {
            parts, model_sha, ..
        } = checked;
        let model_sha = model_sha.as_deref();
        if !files.is_empty() && kind != UnitKind::Pictures {
            return Err(CoreError::Invalid(format!(
                "a {kind} unit cannot write files"
            )));
        }
        for (path, bytes) in &files {
            if let Some(why) = refuse_output_path(path) {
                return Err(CoreError::Invalid(why));
            }
            if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
                return Err(CoreError::Invalid(format!(
                    "output file `{path}` is not a PNG"
                )));
            }
        }
        let root = self.results_root(&key.sweep);
        for (path, bytes) in &files {
            write_output_file(&root, path, bytes)?;
        }
        let mut recorded = Vec::new();
        let mut dirs = Vec::new();
        for (t, staged) in parts {
            let path = staged.publish()?;
            dirs.push(root.join(&t));
            recorded.push((t, path.to_string_lossy().to_string()));
        }
        let m = self.units.get_mut(key).expect("fenced");
        m.row.error.clear();
        m.expires = None;
        let mut row = m.row.clone();
        row.state = DONE;
        self.ledger.commit_done(&row, &recorded, model_sha)?;
        if let Some(sha) = model_sha {
            self.set_model(key.clone(), sha.to_string());
        }
        self.leased.remove(key);
        self.set_state(key, DONE);
        if kind == UnitKind::PrepareModel {
            self.drop_checkpoints(key)?;
        }
        self.emit(&key.sweep, Some(&row), EventKind::Done, String::new());
        Ok(dirs)
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
    ) -> CResult<()> {
        self.fenced(key, claim)?;
        self.failed_attempt(key, error, reason, handed_back)
    }

    pub(super) fn failed_attempt(
        &mut self,
        key: &Key,
        error: &str,
        reason: FailureReason,
        handed_back: bool,
    ) -> CResult<()> {
        let retryable = reason.retryable();
        let expired = reason == FailureReason::LeaseExpired;
        self.leased.remove(key);
        let max = self.cfg.max_attempts;
        let max_expiries = self.cfg.max_expiries;
        let backoff = self.cfg.backoff_base;
        let backoff_max = self.cfg.backoff_max;
        let root = self.results_root(&key.sweep);
        let m = self.units.get_mut(key).expect("caller checked");
        m.expires = None;
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
                time_ms: now_ms(),
            };
            tables::write_part(
                &root.join("failures"),
                &format!("{}-a{}", key.unit, m.row.attempt),
                &tables::failures_batch(&[row]),
            )?;
            m.row.error = error.to_string();
            if !retryable || m.row.failures >= max || m.row.expiries >= max_expiries {
                (EventKind::Failed, FAILED)
            } else if expired {
                m.not_before = None;
                (EventKind::Retrying, PENDING)
            } else {
                let wait = backoff.saturating_mul(1 << (m.row.failures - 1).min(16));
                m.not_before = Some(Instant::now() + wait.min(backoff_max));
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
    pub(super) fn settle_failed(&mut self, key: &Key, why: String) -> CResult<()> {
        let m = self.units.get_mut(key).expect("exists");
        m.row.error = why.clone();
        self.set_state(key, FAILED);
        let row = self.units[key].row.clone();
        self.ledger.update_unit(&row)?;
        self.emit(&key.sweep, Some(&row), EventKind::Failed, why);
        Ok(())
    }

    /// Returns the expired leases to the queue, each counted as a failed attempt.
    pub fn expire(&mut self) -> CResult<usize> {
        let now = Instant::now();
        let expired: Vec<Key> = self
            .leased
            .iter()
            .filter(|k| self.units[*k].expires.is_some_and(|t| t <= now))
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
            self.failed_attempt(key, &msg, FailureReason::LeaseExpired, false)?;
        }
        Ok(expired.len())
    }
}

/// A unit's kind and the units it read: what its completion's parts are checked against.
#[derive(Debug, Clone)]
pub struct PartsOf {
    pub kind: UnitKind,
    pub reads: Vec<String>,
}

/// A completion's parts after `check_parts`: only these can be written.
pub struct CheckedParts {
    unit: Key,
    parts: Vec<(String, Vec<u8>)>,
    model_sha: Option<String>,
}

impl CheckedParts {
    /// Writes and syncs each part under a temporary name in its table under `root` (the sweep's
    /// results folder): the slow half of a completion, done without the scheduler's lock.
    pub fn stage(self, root: &std::path::Path) -> CResult<StagedParts> {
        let mut parts = Vec::with_capacity(self.parts.len());
        for (t, bytes) in self.parts {
            let staged = tables::stage_part_bytes(&root.join(&t), &self.unit.unit, &bytes)?;
            parts.push((t, staged));
        }
        Ok(StagedParts {
            unit: self.unit,
            parts,
            model_sha: self.model_sha,
        })
    }
}

/// Checked parts written under temporary names: what `Core::complete_checked` publishes.
pub struct StagedParts {
    unit: Key,
    parts: Vec<(String, tables::StagedPart)>,
    model_sha: Option<String>,
}

/// Checks a completion of unit `key` before anything is written, without the scheduler's lock:
/// only the tables its kind writes, the first of them present, each part in its table's schema
/// with rows of this unit (`iscp_sweep::part_check`), and a prepare unit's model hash.
pub fn check_parts(
    key: &Key,
    of: &PartsOf,
    parts: Vec<(String, Vec<u8>)>,
    model_sha: Option<&str>,
) -> CResult<CheckedParts> {
    let kind = of.kind;
    let model_sha = model_sha.filter(|s| !s.is_empty());
    let model_sha = if kind == UnitKind::PrepareModel {
        match model_sha {
            Some(s) if iscp_proto::is_sha256(s) => Some(s.to_string()),
            Some(s) => return Err(CoreError::Invalid(format!("`{s}` is not a sha256 in hex"))),
            None => {
                return Err(CoreError::Invalid(
                    "a prepare-model unit's completion names its model's sha256".into(),
                ))
            }
        }
    } else {
        None
    };
    let allowed = kind.tables();
    if let Some(must) = allowed.first() {
        if !parts.iter().any(|(t, _)| t == must) {
            return Err(CoreError::Invalid(format!(
                "a {kind} unit must write `{must}`"
            )));
        }
    }
    let owner = PartOwner {
        unit_id: &key.unit,
        reads: &of.reads,
        model_sha: model_sha.as_deref(),
    };
    let mut checked = Vec::with_capacity(parts.len());
    for (t, bytes) in parts {
        if !allowed.contains(&t.as_str()) {
            return Err(CoreError::Invalid(format!(
                "a {kind} unit cannot write table `{t}`"
            )));
        }
        if checked
            .iter()
            .any(|(seen, _): &(String, Vec<u8>)| *seen == t)
        {
            return Err(CoreError::Invalid(format!("two parts for `{t}`")));
        }
        let bytes = check_part(&t, bytes, &owner)
            .map_err(|e| CoreError::Invalid(format!("part for `{t}`: {e}")))?;
        checked.push((t, bytes));
    }
    Ok(CheckedParts {
        unit: key.clone(),
        parts: checked,
        model_sha,
    })
}
