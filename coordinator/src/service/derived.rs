//! A derived setting's training set on the coordinator: the Parquet parts its derive-data units
//! wrote become fetchable artifacts, handed to the worker that trains on them.

use super::core::*;
use super::ledger::UnitRow;
use super::*;
use iscp_engine::model::sha256_file;
use iscp_sweep::tables;

impl Core {
    /// The artifact hashes of a prepare unit's derive-data parts, in shard order (empty for a
    /// setting that is not derived). Each part is hashed and registered once.
    pub(super) fn derived_inputs(&mut self, row: &UnitRow) -> CResult<Vec<String>> {
        let dir = self.results_root(&row.sweep).join("derived");
        let mut out = Vec::new();
        for d in &row.deps {
            let key = UnitKey::new(row.sweep.as_str(), d.as_str());
            if let Some(sha) = self.derived.get(&key) {
                out.push(sha.clone());
                continue;
            }
            let p = tables::part_path(&dir, d);
            let bytes = std::fs::metadata(&p)
                .map_err(|e| CoreError::io(&p, e))?
                .len();
            let sha = sha256_file(&p).map_err(iscp_sweep::CoordError::from)?;
            self.put_artifact(&sha, &p.to_string_lossy(), bytes)?;
            self.derived.insert(key, sha.clone());
            out.push(sha);
        }
        Ok(out)
    }
}
