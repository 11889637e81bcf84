//! Spec submission in the scheduler: a sweep's units added (those known keep their state, those
//! whose parts are already on disk are adopted as done) and its index built.

use super::*;
use iscp_sweep::tables;
use std::collections::{HashMap, HashSet};

/// A submitted spec as the ledger keeps it: its hash, the file it came from, its text.
#[derive(Debug, Clone, Copy)]
pub struct SpecText<'a> {
    pub sha: &'a str,
    pub file: &'a str,
    pub source: &'a str,
}

/// The unit ids that have a part in each table of a sweep's results folder, listed once per table
/// before the scheduler's lock is taken (instead of a `stat` per new unit and table under it): a
/// new unit whose first table's part is there is adopted as done.
#[derive(Debug, Default)]
pub struct PartsOnDisk(HashMap<Table, HashSet<String>>);

impl PartsOnDisk {
    /// Lists the result tables under `root` (a sweep's results folder; missing folders are empty).
    pub fn list(root: &Path) -> SResult<PartsOnDisk> {
        let mut out = HashMap::new();
        for table in Table::RESULTS {
            let dir = table.dir(root);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(SchedulerError::io(&dir, e)),
            };
            let mut ids = HashSet::new();
            for entry in entries {
                let name = entry.map_err(|e| SchedulerError::io(&dir, e))?.file_name();
                let name = name.to_string_lossy();
                if let Some(id) = name
                    .strip_prefix("part-")
                    .and_then(|n| n.strip_suffix(".parquet"))
                {
                    ids.insert(id.to_string());
                }
            }
            out.insert(table, ids);
        }
        Ok(PartsOnDisk(out))
    }

    fn has(&self, table: Table, unit: &str) -> bool {
        self.0.get(&table).is_some_and(|ids| ids.contains(unit))
    }
}

impl Scheduler {
    /// Records a sweep's class names, for the words of progress events.
    pub fn set_class_names(&mut self, sweep: &str, names: Vec<String>) -> SResult<()> {
        self.ledger.put_class_names(sweep, &names)?;
        if let Some(s) = self.sweeps.get_mut(sweep) {
            s.class_names = names;
        }
        Ok(())
    }

    /// Adds a spec's units; units already known keep their state. A new unit whose parts are already
    /// on disk (an earlier local run, a lost ledger) is adopted as done.
    pub fn submit(
        &mut self,
        sweep: &str,
        spec_sha: &str,
        file: &str,
        source: &str,
        units: Vec<NewUnit>,
        now: Now,
    ) -> SResult<(u64, u64, u64)> {
        let on_disk = PartsOnDisk::list(&self.results_root(sweep))?;
        let spec = SpecText {
            sha: spec_sha,
            file,
            source,
        };
        self.submit_listed(sweep, spec, units, &on_disk, now)
    }

    /// `submit`, with the sweep's parts on disk listed beforehand (without the lock).
    pub fn submit_listed(
        &mut self,
        sweep: &str,
        spec: SpecText,
        units: Vec<NewUnit>,
        on_disk: &PartsOnDisk,
        now: Now,
    ) -> SResult<(u64, u64, u64)> {
        let spec_sha = spec.sha;
        self.ledger
            .put_spec(spec_sha, sweep, spec.file, spec.source, now.unix_ms)?;
        let root = self.results_root(sweep);
        upgrade_old_parts(&root)?;
        let Planned {
            rows,
            adopted,
            new,
            done,
            owned,
        } = self.plan_submitted(sweep, spec_sha, units, on_disk, &root);
        self.store_submitted(sweep, &rows, &owned, &adopted)?;
        let total = rows.len() as u64;
        let order: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        drop(owned);
        self.merge_submitted(sweep, rows);
        self.renew_sweep_mem(sweep, order);
        self.rebuild_index(sweep);
        self.settle_doomed()?;
        self.emit(
            sweep,
            None,
            EventKind::Submitted,
            format!("{total} units, {new} new"),
        );
        Ok((total, new, done))
    }

    /// The rows of a spec's units in order: those known as they are, new ones pending or adopted.
    fn plan_submitted(
        &self,
        sweep: &str,
        spec_sha: &str,
        units: Vec<NewUnit>,
        on_disk: &PartsOnDisk,
        root: &Path,
    ) -> Planned {
        let mut rows = Vec::new();
        let mut adopted = Vec::new();
        let (mut new, mut done) = (0, 0);
        let mut owned: Vec<(String, String)> = Vec::with_capacity(units.len());
        for (ord, mut u) in units.into_iter().enumerate() {
            // Moved, not copied: a sweep's parameters are most of what it weighs.
            owned.push((u.id.clone(), std::mem::take(&mut u.params)));
            let key = UnitKey::new(sweep, u.id.as_str());
            let mut row = match self.units.get(&key) {
                Some(m) => m.row.clone(),
                None => {
                    new += 1;
                    let (row, parts) = new_row(sweep, spec_sha, &mut u, on_disk, root);
                    if let Some(parts) = parts {
                        adopted.push((row.clone(), parts));
                    }
                    row
                }
            };
            row.spec_sha = spec_sha.into();
            row.ord = ord as i64;
            // A ledger from before work estimates gets them now.
            row.work = u.work;
            if row.state == DONE {
                done += 1;
            }
            rows.push(row);
        }
        Planned {
            rows,
            adopted,
            new,
            done,
            owned,
        }
    }

    /// Writes a spec's rows and parameters to the ledger, and commits the units adopted as done.
    fn store_submitted(
        &mut self,
        sweep: &str,
        rows: &[UnitRow],
        owned: &[(String, String)],
        adopted: &[(UnitRow, Vec<(String, String)>)],
    ) -> SResult<()> {
        let params: Vec<(&str, &str)> = owned
            .iter()
            .map(|(i, p)| (i.as_str(), p.as_str()))
            .collect();
        self.ledger.add_units(rows, &params)?;
        for (row, parts) in adopted {
            self.ledger.commit_done(row, parts, None)?;
            if row.kind == UnitKind::PrepareModel {
                self.model_from_part(&UnitKey::new(sweep, row.id.as_str()), parts)?;
            }
        }
        Ok(())
    }

    /// Puts a spec's rows in memory: known units take their new spec, place and work.
    fn merge_submitted(&mut self, sweep: &str, rows: Vec<UnitRow>) {
        for row in rows {
            let key = UnitKey::new(sweep, row.id.as_str());
            match self.units.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let m = e.get_mut();
                    m.row.spec_sha = row.spec_sha;
                    m.row.ord = row.ord;
                    m.row.work = row.work;
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Box::new(UnitMem::new(row)));
                }
            }
        }
    }

    /// Replaces a sweep's memory with its new `order`, keeping its class names and its report.
    fn renew_sweep_mem(&mut self, sweep: &str, order: Vec<String>) {
        let (class_names, reporting) = self
            .sweeps
            .get(sweep)
            .map(|s| (s.class_names.clone(), s.reporting))
            .unwrap_or_default();
        let mut mem = SweepMem::new(order, false);
        mem.class_names = class_names;
        // A report being written goes on; the sweep is reported again once it ends.
        mem.reporting = reporting;
        self.sweeps.insert(sweep.to_string(), mem);
    }
}

/// A spec's units as `plan_submitted` found them.
struct Planned {
    rows: Vec<UnitRow>,
    /// The new units adopted as done, with their parts on disk: (table, path).
    adopted: Vec<(UnitRow, Vec<(String, String)>)>,
    new: u64,
    done: u64,
    /// Each unit's (id, parameters), moved out of its `NewUnit`.
    owned: Vec<(String, String)>,
}

/// Upgrades a results folder from earlier protocol versions (failures parts, group-named parts).
fn upgrade_old_parts(root: &Path) -> SResult<()> {
    // A results folder from before protocol version 2: one schema for every failures part.
    let upgraded = tables::upgrade_failure_parts(&Table::Failures.dir(root))?;
    if upgraded > 0 {
        tracing::info!(upgraded, "failures parts given a `reason` column");
    }
    // Before version 3 the coordinator wrote scans and transfers itself, named by group; now
    // their units write them, named by unit id.
    for table in [Table::Scan, Table::Transfer] {
        let removed = tables::remove_group_named_parts(&table.dir(root))?;
        if removed > 0 {
            tracing::info!(
                removed,
                table = table.name(),
                "parts of an earlier version replaced by units"
            );
        }
    }
    Ok(())
}

/// A new unit's row (`deps` moved out of `u`): done, with its parts, if its first table's is there.
fn new_row(
    sweep: &str,
    spec_sha: &str,
    u: &mut NewUnit,
    on_disk: &PartsOnDisk,
    root: &Path,
) -> (UnitRow, Option<Vec<(String, String)>>) {
    let mut row = UnitRow {
        sweep: sweep.into(),
        id: u.id.clone(),
        kind: u.kind,
        prepare_id: std::mem::take(&mut u.prepare_id),
        deps: std::mem::take(&mut u.deps),
        spec_sha: spec_sha.into(),
        state: PENDING,
        attempt: 0,
        failures: 0,
        expiries: 0,
        lease_id: String::new(),
        worker: String::new(),
        error: String::new(),
        ord: 0,
        work: u.work,
    };
    let parts: Vec<(String, String)> = u
        .kind
        .tables()
        .iter()
        .filter(|t| on_disk.has(**t, &u.id))
        .map(|t| {
            let p = t.part(root, &u.id);
            (t.to_string(), p.to_string_lossy().to_string())
        })
        .collect();
    let must = u.kind.tables().first();
    if must.is_some_and(|m| parts.iter().any(|(t, _)| t == m.name())) {
        row.state = DONE;
        return (row, Some(parts));
    }
    (row, None)
}
