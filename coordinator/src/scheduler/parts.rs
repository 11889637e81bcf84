//! A completion's parts and files checked before anything is written (`check_parts`: the tables
//! its kind writes, each in its schema with rows of this unit), then staged under temporary
//! names (`CheckedParts::stage`), both without the scheduler's lock.

use super::*;
use iscp_sweep::part_check::{check_part, PartOwner};
use iscp_sweep::tables;
use iscp_sweep::work::{refuse_output_path, stage_output_file, Files, StagedFile};
use sha2::{Digest, Sha256};

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
    pub fn stage(self, root: &std::path::Path) -> SResult<StagedParts> {
        let mut parts = Vec::with_capacity(self.parts.len());
        let mut derived = None;
        for (t, bytes) in self.parts {
            if self.kind == UnitKind::DeriveData && t == Table::Derived.name() {
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

/// Checked parts and files written under temporary names: what `Scheduler::complete_checked`
/// publishes (dropped unpublished, they are removed).
pub struct StagedParts {
    pub(super) unit: Key,
    pub(super) parts: Vec<(String, tables::StagedPart)>,
    pub(super) files: Vec<StagedFile>,
    pub(super) model_sha: Option<String>,
    /// A derive-data unit's shard: its sha256 and size.
    pub(super) derived: Option<(String, u64)>,
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
) -> SResult<CheckedParts> {
    let kind = of.kind;
    let model_sha = checked_model_sha(kind, model_sha)?;
    check_files(kind, &files)?;
    let checked = check_tables(key, of, parts, model_sha.as_deref())?;
    Ok(CheckedParts {
        unit: key.clone(),
        kind,
        parts: checked,
        files,
        model_sha,
    })
}

/// A prepare unit's model hash (required, a sha256); none for any other kind.
fn checked_model_sha(kind: UnitKind, model_sha: Option<&str>) -> SResult<Option<String>> {
    if kind != UnitKind::PrepareModel {
        return Ok(None);
    }
    match model_sha.filter(|s| !s.is_empty()) {
        Some(s) if iscp_proto::is_sha256(s) => Ok(Some(s.to_string())),
        Some(s) => Err(SchedulerError::Invalid(format!(
            "`{s}` is not a sha256 in hex"
        ))),
        None => Err(SchedulerError::Invalid(
            "a prepare-model unit's completion names its model's sha256".into(),
        )),
    }
}

/// Refuses files from a unit of a kind that draws none, files outside their place, and non-PNGs.
fn check_files(kind: UnitKind, files: &Files) -> SResult<()> {
    // Pictures draw a setting's PNGs; an audit draws its ROC curves.
    if !files.is_empty() && !matches!(kind, UnitKind::Pictures | UnitKind::Audit) {
        return Err(SchedulerError::Invalid(format!(
            "a {kind} unit cannot write files"
        )));
    }
    for (path, bytes) in files {
        if let Some(why) = refuse_output_path(path) {
            return Err(SchedulerError::Invalid(why));
        }
        if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(SchedulerError::Invalid(format!(
                "output file `{path}` is not a PNG"
            )));
        }
    }
    Ok(())
}

/// Checks each part against its table (one of its kind's, the first present, each once), in order.
fn check_tables(
    key: &Key,
    of: &PartsOf,
    parts: Vec<(String, Vec<u8>)>,
    model_sha: Option<&str>,
) -> SResult<Vec<(String, Vec<u8>)>> {
    let kind = of.kind;
    let allowed = kind.tables();
    if let Some(must) = allowed.first() {
        if !parts.iter().any(|(t, _)| t == must.name()) {
            return Err(SchedulerError::Invalid(format!(
                "a {kind} unit must write `{must}`"
            )));
        }
    }
    let owner = PartOwner {
        unit_id: &key.unit,
        reads: &of.reads,
        model_sha,
    };
    let mut checked = Vec::with_capacity(parts.len());
    for (t, bytes) in parts {
        let Some(table) = Table::parse(&t).filter(|table| allowed.contains(table)) else {
            return Err(SchedulerError::Invalid(format!(
                "a {kind} unit cannot write table `{}`",
                t.escape_debug()
            )));
        };
        if checked
            .iter()
            .any(|(seen, _): &(String, Vec<u8>)| *seen == t)
        {
            return Err(SchedulerError::Invalid(format!("two parts for `{t}`")));
        }
        let bytes = check_part(table, bytes, &owner)
            .map_err(|e| SchedulerError::Invalid(format!("part for `{t}`: {e}")))?;
        checked.push((t, bytes));
    }
    Ok(checked)
}
