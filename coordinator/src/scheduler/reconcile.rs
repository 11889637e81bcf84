//! Reconciling the ledger with the part files when the coordinator starts: parts the ledger never
//! committed are deleted, done units whose part is gone are queued again. A part is known by its
//! sweep, table folder and file name, not by where the results folder was when it landed: a
//! results folder copied or moved elsewhere (with its `.state`) resumes with every part.

use super::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;

impl Scheduler {
    /// Drops part files the ledger does not know (a crash between rename and commit) and requeues
    /// done units whose parts are gone; loads the model hash of every prepared setting.
    pub(super) fn reconcile(&mut self) -> SResult<()> {
        let parts: Vec<(String, String, String, String)> = self
            .ledger
            .parts()?
            .into_iter()
            .map(|(path, sweep, unit, table)| {
                let here = anchored(&self.cfg.results_dir.join(&sweep), &path);
                (here, sweep, unit, table)
            })
            .collect();
        let known: HashSet<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        let mut dropped = 0;
        for sweep in self.sweeps.keys() {
            let root = self.cfg.results_dir.join(sweep);
            for table in Table::RESULTS {
                let dir = table.dir(&root);
                for name in tables::done_units(&dir)? {
                    let path = tables::part_path(&dir, &name);
                    if !known.contains(path.to_string_lossy().as_ref()) {
                        std::fs::remove_file(&path).map_err(|e| SchedulerError::io(&path, e))?;
                        dropped += 1;
                    }
                }
            }
        }
        let mut by_unit: HashMap<Key, Vec<(String, String)>> = HashMap::new();
        for (path, sweep, unit, table) in parts {
            by_unit
                .entry(UnitKey::new(sweep, unit))
                .or_default()
                .push((table, path));
        }
        let mut requeued = Vec::new();
        let mut prepared = Vec::new();
        for (key, u) in self.units.iter_mut() {
            if u.row.state != DONE {
                continue;
            }
            let ps = by_unit.get(key).cloned().unwrap_or_default();
            let must = u.row.kind.tables().first();
            let missing = ps.iter().any(|(_, p)| !Path::new(p).exists())
                || must.is_some_and(|m| !ps.iter().any(|(t, _)| t == m.name()));
            if missing {
                requeued.push(key.clone());
            } else if u.row.kind == UnitKind::PrepareModel {
                prepared.push((key.clone(), ps));
            }
        }
        for (key, ps) in prepared {
            if self.models.contains_key(&key) {
                continue;
            }
            // A ledger from before model hashes were kept: learnt once from the part. An
            // unreadable part leaves the model unknown; its searches then fail to load it.
            let _ = self.model_from_part(&key, &ps);
        }
        for key in &requeued {
            // Before the index is built: only the state changes.
            self.set_state(key, PENDING);
            self.ledger.forget_parts_of(&key.sweep, &key.unit)?;
            self.ledger.update_unit(&self.units[key].row)?;
        }
        if dropped + requeued.len() > 0 {
            tracing::warn!(
                dropped,
                requeued = requeued.len(),
                "reconciled the ledger with the part files"
            );
        }
        Ok(())
    }
}

/// Where the part the ledger recorded at `recorded` is now: the same table folder and file name
/// under the sweep's results folder `root` (the ledger keeps the path it was written at, and the
/// folder may have been copied or moved since). A path without a table folder stays as it is.
fn anchored(root: &Path, recorded: &str) -> String {
    last_parts_under(root, recorded, 2)
}

/// Where a file recorded at `recorded` (`…/<sweep>/<folder>/<file>`) is under the results folder
/// `results` now; a path with fewer parts stays as it is.
pub(super) fn moved(results: &Path, recorded: &str) -> String {
    last_parts_under(results, recorded, 3)
}

/// The last `n` named parts of `recorded` joined under `root`; `recorded` itself when it has
/// fewer.
fn last_parts_under(root: &Path, recorded: &str, n: usize) -> String {
    let named: Vec<_> = Path::new(recorded)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    match named.len() >= n {
        true => named[named.len() - n..]
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .to_string_lossy()
            .to_string(),
        false => recorded.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{anchored, moved};
    use std::path::Path;

    #[test]
    fn a_part_is_found_under_the_results_folder_it_is_in_now() {
        assert_eq!(
            anchored(
                Path::new("/new/results/sw"),
                "/old/place/results/sw/detection/part-ab.parquet"
            ),
            "/new/results/sw/detection/part-ab.parquet"
        );
        assert_eq!(anchored(Path::new("/r/sw"), "part.parquet"), "part.parquet");
        assert_eq!(
            moved(Path::new("/new"), "/old/sw/artifacts/ab.iscpm"),
            "/new/sw/artifacts/ab.iscpm"
        );
        assert_eq!(moved(Path::new("/new"), "a/b"), "a/b");
    }
}
