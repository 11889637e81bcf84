//! Batched completions: several units of one worker fenced under one lock, checked and written
//! without it, published and committed under a second, folders synced without it, and answered
//! once the group's commit is durable.

use super::service::Service;
use crate::scheduler::{check_parts, LeaseClaim, PartsOf, SResult, StagedParts, UnitKey};
use iscp_proto::v1::{CompleteUnitParams, UnitCompleted};
use iscp_sweep::tables;
use iscp_sweep::work::Files;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tonic::Status;

type Key = UnitKey;

/// One unit's completion as a worker sends it.
pub struct Completion {
    pub key: Key,
    pub lease_id: String,
    pub attempt: u64,
    pub parts: Vec<(String, Vec<u8>)>,
    pub files: Files,
    pub model_sha: String,
}

impl From<CompleteUnitParams> for Completion {
    fn from(r: CompleteUnitParams) -> Completion {
        Completion {
            key: UnitKey::new(r.sweep, r.unit_id),
            lease_id: r.lease_id,
            attempt: r.attempt,
            parts: r.parts.into_iter().map(|p| (p.table, p.parquet)).collect(),
            files: r.files.into_iter().map(|f| (f.path, f.data)).collect(),
            model_sha: r.model_sha256,
        }
    }
}

impl Service {
    /// Completes units `worker` leased, each on its own (one refused leaves the others done):
    /// fenced under one lock, checked and written without it, published and committed under a
    /// second, folders synced without it, and answered once the whole group's commit is durable.
    pub fn complete_batch(&self, worker: &str, units: Vec<Completion>) -> Vec<Result<(), Status>> {
        fn claim<'a>(
            worker: &'a str,
            (_, lease_id, attempt): &'a (Key, String, u64),
        ) -> LeaseClaim<'a> {
            LeaseClaim {
                worker,
                lease_id,
                attempt: *attempt,
            }
        }
        let mut claims = Vec::with_capacity(units.len());
        let mut payloads = Vec::with_capacity(units.len());
        for c in units {
            claims.push((c.key, c.lease_id, c.attempt));
            payloads.push((c.parts, c.files, c.model_sha));
        }
        let owners: Vec<SResult<(PartsOf, PathBuf)>> = {
            let core = self.scheduler();
            claims
                .iter()
                .map(|c| {
                    core.fenced(&c.0, claim(worker, c))?;
                    Ok((core.part_owner(&c.0)?, core.results_root(&c.0.sweep)))
                })
                .collect()
        };
        let staged: Vec<SResult<StagedParts>> = claims
            .iter()
            .zip(owners)
            .zip(payloads)
            .map(|((c, owner), (parts, files, model_sha))| {
                let (owner, root) = owner?;
                check_parts(&c.0, &owner, parts, files, Some(&model_sha))?.stage(&root)
            })
            .collect();
        let done: Vec<Result<Vec<PathBuf>, Status>> = {
            let mut core = self.scheduler();
            claims
                .iter()
                .zip(staged)
                .map(|(c, s)| Ok(s.and_then(|s| core.complete_checked(&c.0, claim(worker, c), s))?))
                .collect()
        };
        // One sync per folder for the whole group; a folder that cannot be synced fails (as an
        // internal error) every unit whose rename it holds.
        let dirs: BTreeSet<&PathBuf> = done.iter().flatten().flatten().collect();
        let unsynced: Vec<(&PathBuf, String)> = dirs
            .into_iter()
            .filter_map(|d| tables::sync_dir(d).err().map(|e| (d, e.to_string())))
            .collect();
        done.iter()
            .map(|r| match r {
                Err(e) => Err(e.clone()),
                Ok(dirs) => match unsynced.iter().find(|(d, _)| dirs.contains(d)) {
                    Some((_, e)) => Err(Status::internal(e.clone())),
                    None => Ok(()),
                },
            })
            .collect()
    }
}

/// A unit's answer in a batched completion: gRPC code 0 when it completed.
pub fn unit_completed(key: &Key, r: &Result<(), Status>) -> UnitCompleted {
    let (code, message) = match r {
        Ok(()) => (tonic::Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_string()),
    };
    UnitCompleted {
        sweep: key.sweep.to_string(),
        unit_id: key.unit.to_string(),
        code: code as i32,
        message,
    }
}
