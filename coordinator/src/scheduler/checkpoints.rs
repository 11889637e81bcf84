//! Training checkpoints kept by the coordinator so a training unit leased again resumes on any
//! worker: the latest reported one per unit, older uploads dropped, all dropped once it is done.

use super::*;
use std::path::{Path, PathBuf};

impl Scheduler {
    /// Records a newer checkpoint of a unit whose lease the reporter holds; the older one's
    /// artifact is deleted.
    pub(super) fn record_checkpoint(&mut self, key: &Key, c: Checkpoint) -> SResult<()> {
        if self.checkpoints.get(key).is_some_and(|old| old.0 >= c.0) {
            return Ok(());
        }
        if self.ledger.artifact(&c.1)?.is_none() {
            return Err(SchedulerError::Invalid(format!(
                "checkpoint artifact {} was never put",
                c.1
            )));
        }
        self.ledger.put_checkpoint(&key.sweep, &key.unit, &c)?;
        // Uploads older than the recorded one (earlier epochs) are of no further use.
        let dir = self.checkpoint_dir(&key.sweep, &key.unit);
        let keep = iscp_sweep::work::artifact_path(&dir, &c.1);
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if let Some(kept) = modified(&keep) {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p != keep && modified(&p).is_some_and(|t| t <= kept) {
                    if let Some(sha) = p.file_stem().and_then(|s| s.to_str()) {
                        self.ledger.forget_artifact(sha)?;
                    }
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        self.checkpoints.insert(key.clone(), c);
        Ok(())
    }

    /// Deletes a unit's stored checkpoints (its model is done).
    pub(super) fn drop_checkpoints(&mut self, key: &Key) -> SResult<()> {
        self.checkpoints.remove(key);
        self.ledger.drop_checkpoint(&key.sweep, &key.unit)?;
        let dir = self.checkpoint_dir(&key.sweep, &key.unit);
        self.ledger
            .forget_artifacts_under(&format!("{}/", dir.display()))?;
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir(dir.parent().expect("sweep folder"));
        Ok(())
    }

    /// Where a training unit's uploaded checkpoints are kept until its model is done.
    pub fn checkpoint_dir(&self, sweep: &str, unit: &str) -> PathBuf {
        self.cfg
            .state_dir
            .join("checkpoints")
            .join(sweep)
            .join(unit)
    }
}
