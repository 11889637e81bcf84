//! A derived setting's training set on the coordinator: the Parquet parts its derive-data units
//! wrote become fetchable artifacts, handed to the worker that trains on them.

use super::core::*;
use super::ledger::UnitRow;
use super::*;
use crate::tables;
use sha2::{Digest, Sha256};

impl Core {
    /// The artifact hashes of a prepare unit's derive-data parts, in shard order (empty for a
    /// setting that is not derived). Each part is hashed and registered once.
    pub(super) fn derived_inputs(&mut self, row: &UnitRow) -> CResult<Vec<String>> {
        let dir = self.results_root(&row.sweep).join("derived");
        let mut out = Vec::new();
        for d in &row.deps {
            let key = (row.sweep.clone(), d.clone());
            if let Some(sha) = self.derived.get(&key) {
                out.push(sha.clone());
                continue;
            }
            let p = tables::part_path(&dir, d);
            let bytes = std::fs::read(&p).map_err(|e| CoreError::io(&p, e))?;
            let sha = hex::encode(Sha256::digest(&bytes));
            self.put_artifact(&sha, &p.to_string_lossy(), bytes.len() as u64)?;
            self.derived.insert(key, sha.clone());
            out.push(sha);
        }
        Ok(out)
    }
}
