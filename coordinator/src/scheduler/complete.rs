//! Completions in the scheduler: a unit's parts, checked and staged without the scheduler's lock
//! (`parts`), published and committed with the unit under it, if the caller holds its lease.

use super::*;
use iscp_sweep::tables;
use iscp_sweep::work::Files;

impl Scheduler {
    /// Writes a unit's parts and marks it done, if the caller holds its current lease. A prepare
    /// unit names its model's sha256 (`model_sha`): what its searches will load.
    pub fn complete(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        parts: Vec<(String, Vec<u8>)>,
        model_sha: Option<&str>,
    ) -> SResult<()> {
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
    ) -> SResult<()> {
        self.fenced(key, claim)?;
        let owner = self.part_owner(key)?;
        let checked = check_parts(key, &owner, parts, files, model_sha)?;
        let staged = checked.stage(&self.results_root(&key.sweep))?;
        for dir in self.complete_checked(key, claim, staged)? {
            tables::sync_dir(&dir)?;
        }
        Ok(())
    }

    /// What a completion of this unit is checked against: its kind and the units it read.
    pub fn part_owner(&self, key: &Key) -> SResult<PartsOf> {
        let Some(m) = self.units.get(key) else {
            return Err(SchedulerError::NotFound(format!(
                "unit {} of sweep {}",
                key.unit, key.sweep
            )));
        };
        Ok(PartsOf {
            kind: m.row.kind,
            reads: m.row.deps.clone(),
        })
    }

    /// Publishes staged parts and files (checked and written without the scheduler's lock:
    /// `check_parts`, `CheckedParts::stage`) and marks the unit done, if the caller holds its
    /// current lease. Returns the folders whose renames the caller syncs before answering (a done
    /// unit whose part a crash lost is requeued on restart).
    pub fn complete_checked(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        staged: StagedParts,
    ) -> SResult<Vec<PathBuf>> {
        self.fenced(key, claim)?;
        if &staged.unit != key {
            return Err(SchedulerError::Invalid(format!(
                "parts checked for unit {} cannot complete unit {}",
                staged.unit.unit, key.unit
            )));
        }
        let kind = self.units[key].row.kind;
        let StagedParts {
            parts,
            files,
            model_sha,
            derived,
            ..
        } = staged;
        let model_sha = model_sha.as_deref();
        let root = self.results_root(&key.sweep);
        let mut dirs = Vec::new();
        for f in files {
            dirs.push(f.publish()?);
        }
        let mut recorded = Vec::new();
        for (t, part) in parts {
            let path = part.publish()?;
            dirs.push(root.join(&t));
            if let Some((sha, bytes)) = derived.as_ref().filter(|_| t == Table::Derived.name()) {
                // Hashed when it was staged: a prepare that trains on it is leased its hash.
                let p = path.to_string_lossy();
                self.ledger.put_artifact_at(sha, &p, *bytes)?;
                self.derived.insert(key.clone(), sha.clone());
            }
            recorded.push((t, path.to_string_lossy().to_string()));
        }
        let m = self.units.get_mut(key).expect("fenced");
        m.row.error.clear();
        // The row as the ledger records it; memory follows once the commit is in.
        let mut row = m.row.clone();
        row.state = DONE;
        self.ledger.commit_done(&row, &recorded, model_sha)?;
        if let Some(sha) = model_sha {
            self.set_model(key.clone(), sha.to_string());
        }
        self.set_state(key, DONE);
        if kind == UnitKind::PrepareModel {
            self.drop_checkpoints(key)?;
        }
        self.emit(&key.sweep, Some(&row), EventKind::Done, String::new());
        Ok(dirs)
    }
}
