//! A derived setting's training set on the coordinator: the Parquet parts its derive-data units
//! wrote become fetchable artifacts, handed to the worker that trains on them.

use super::*;
use iscp_engine::model::sha256_file;

impl Scheduler {
    /// The artifact hashes of a prepare unit's derive-data parts, in shard order (empty for a
    /// setting that is not derived). A shard is hashed when its part lands (`CheckedParts::stage`,
    /// without the lock) and recorded with its path, so after a restart the ledger has it too;
    /// only a part adopted from an earlier ledger, never registered, is hashed here.
    pub(super) fn derived_inputs(&mut self, row: &UnitRow) -> SResult<Vec<String>> {
        let root = self.results_root(&row.sweep);
        let mut out = Vec::new();
        for d in &row.deps {
            let key = UnitKey::new(row.sweep.as_str(), d.as_str());
            if let Some(sha) = self.derived.get(&key) {
                out.push(sha.clone());
                continue;
            }
            let p = Table::Derived.part(&root, d);
            let path = p.to_string_lossy();
            let sha = match self.ledger.artifact_at(&path)? {
                Some(sha) => sha,
                None => {
                    tracing::info!(unit = %d, "hashing a derived shard registered by no completion");
                    let bytes = std::fs::metadata(&p)
                        .map_err(|e| SchedulerError::io(&p, e))?
                        .len();
                    let sha = sha256_file(&p).map_err(iscp_sweep::SweepError::from)?;
                    self.ledger.put_artifact_at(&sha, &path, bytes)?;
                    sha
                }
            };
            self.derived.insert(key, sha.clone());
            out.push(sha);
        }
        Ok(out)
    }
}
