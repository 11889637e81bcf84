//! Completions: a unit's parts and files checked and written under temporary names without the
//! scheduler's lock (`check_parts`, `CheckedParts::stage`), then published and committed with the
//! unit under it (`Core::complete_checked`); several units of one worker at once share both locks
//! and one fsync (`Service::complete_batch`).

use super::core::*;
use super::grpc::Service;
use super::*;
use iscp_proto::v1::{CompleteUnitParams, UnitCompleted};
use iscp_sweep::part_check::{check_part, PartOwner};
use iscp_sweep::tables;
use iscp_sweep::work::{refuse_output_path, stage_output_file, Files, StagedFile};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;
use tonic::Status;

impl Core {
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
        let checked = check_parts(key, &owner, parts, files, model_sha)?;
        let staged = checked.stage(&self.results_root(&key.sweep))?;
        for dir in self.complete_checked(key, claim, staged)? {
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

    /// Publishes staged parts and files (checked and written without the scheduler's lock:
    /// `check_parts`, `CheckedParts::stage`) and marks the unit done, if the caller holds its
    /// current lease. Returns the folders whose renames the caller syncs before answering (a done
    /// unit whose part a crash lost is requeued on restart).
    pub fn complete_checked(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        staged: StagedParts,
    ) -> CResult<Vec<PathBuf>> {
        self.fenced(key, claim)?;
        if &staged.unit != key {
            return Err(CoreError::Invalid(format!(
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
            if let Some((sha, bytes)) = derived.as_ref().filter(|_| t == "derived") {
                // Hashed when it was staged: a prepare that trains on it is leased its hash.
                let p = path.to_string_lossy();
                self.ledger.put_artifact_at(sha, &p, *bytes)?;
                self.derived.insert(key.clone(), sha.clone());
            }
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
}

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
        let owners: Vec<CResult<(PartsOf, PathBuf)>> = {
            let core = self.core();
            claims
                .iter()
                .map(|c| {
                    core.fenced(&c.0, claim(worker, c))?;
                    Ok((core.part_owner(&c.0)?, core.results_root(&c.0.sweep)))
                })
                .collect()
        };
        let staged: Vec<CResult<StagedParts>> = claims
            .iter()
            .zip(owners)
            .zip(payloads)
            .map(|((c, owner), (parts, files, model_sha))| {
                let (owner, root) = owner?;
                check_parts(&c.0, &owner, parts, files, Some(&model_sha))?.stage(&root)
            })
            .collect();
        let done: Vec<Result<Vec<PathBuf>, Status>> = {
            let mut core = self.core();
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

/// A unit's kind and the units it read: what its completion's parts are checked against.
#[derive(Debug, Clone)]
pub struct PartsOf {
    pub kind: UnitKind,
    pub reads: Vec<String>,
}

/// A completion after `check_parts`: only these parts and files can be written.
pub struct CheckedParts {
    unit: Key,
    kind: UnitKind,
    parts: Vec<(String, Vec<u8>)>,
    files: Files,
    model_sha: Option<String>,
}

impl CheckedParts {
    /// Writes and syncs each part and file under a temporary name beside its place under `root`
    /// (the sweep's results folder), and hashes a derived shard: the slow half of a completion,
    /// done without the scheduler's lock.
    pub fn stage(self, root: &std::path::Path) -> CResult<StagedParts> {
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut derived = None;
        for (t, bytes) in self.parts {
            if self.kind == UnitKind::DeriveData && t == "derived" {
                derived = Some((format!("{:x}", Sha256::digest(&bytes)), bytes.len() as u64));
            }
            let staged = tables::stage_part_bytes(&root.join(&t), &self.unit.unit, &bytes)?;
            parts.push((t, staged));
        }
        let mut files = Vec::with_capacity(self.files.len());
        for (path, bytes) in &self.files {
            files.push(stage_output_file(root, path, bytes)?);
        }
        Ok(StagedParts {
            unit: self.unit,
            parts,
            files,
            model_sha: self.model_sha,
            derived,
        })
    }
}

/// Checked parts and files written under temporary names: what `Core::complete_checked`
/// publishes (dropped unpublished, they are removed).
pub struct StagedParts {
    unit: Key,
    parts: Vec<(String, tables::StagedPart)>,
    files: Vec<StagedFile>,
    model_sha: Option<String>,
    /// A derive-data unit's shard: its sha256 and size.
    derived: Option<(String, u64)>,
}

/// Checks a completion of unit `key` before anything is written, without the scheduler's lock:
/// only the tables its kind writes, the first of them present, each part in its table's schema
/// with rows of this unit (`iscp_sweep::part_check`), a prepare unit's model hash, and files
/// (pictures, under `images/`) only from a pictures unit.
pub fn check_parts(
    key: &Key,
    of: &PartsOf,
    parts: Vec<(String, Vec<u8>)>,
    files: Files,
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
    // Pictures draw a setting's PNGs; an audit draws its ROC curves.
    if !files.is_empty() && !matches!(kind, UnitKind::Pictures | UnitKind::Audit) {
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
    let allowed = kind.tables();
    if let Some(must) = allowed.first() {
        if !parts.iter().any(|(t, _)| t == must.name()) {
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
        let Some(table) = Table::parse(&t).filter(|table| allowed.contains(table)) else {
            return Err(CoreError::Invalid(format!(
                "a {kind} unit cannot write table `{}`",
                t.escape_debug()
            )));
        };
        if checked
            .iter()
            .any(|(seen, _): &(String, Vec<u8>)| *seen == t)
        {
            return Err(CoreError::Invalid(format!("two parts for `{t}`")));
        }
        let bytes = check_part(table, bytes, &owner)
            .map_err(|e| CoreError::Invalid(format!("part for `{t}`: {e}")))?;
        checked.push((t, bytes));
    }
    Ok(CheckedParts {
        unit: key.clone(),
        kind,
        parts: checked,
        files,
        model_sha,
    })
}
