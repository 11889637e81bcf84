//! Spec submission: parse and check the spec (the same errors as `iscp run`), expand it into units
//! with their dependencies, and hand them to the scheduler.

use super::core::*;
use super::ledger::UnitRow;
use super::CResult;
use super::CoreError;
use iscp_sweep::cost::{data_shape, known_class_names, unit_cost, unit_work};
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::tables;
use iscp_sweep::units::{plan, UnitParams};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The unit ids that have a part in each table of a sweep's results folder, listed once per table
/// before the scheduler's lock is taken (instead of a `stat` per new unit and table under it): a
/// new unit whose first table's part is there is adopted as done.
#[derive(Debug, Default)]
pub struct PartsOnDisk(HashMap<&'static str, HashSet<String>>);

impl PartsOnDisk {
    /// Lists the result tables under `root` (a sweep's results folder; missing folders are empty).
    pub fn list(root: &Path) -> CResult<PartsOnDisk> {
        let mut out = HashMap::new();
        for table in Table::RESULTS {
            let dir = root.join(table.name());
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CoreError::io(&dir, e)),
            };
            let mut ids = HashSet::new();
            for entry in entries {
                let name = entry.map_err(|e| CoreError::io(&dir, e))?.file_name();
                let name = name.to_string_lossy();
                if let Some(id) = name
                    .strip_prefix("part-")
                    .and_then(|n| n.strip_suffix(".parquet"))
                {
                    ids.insert(id.to_string());
                }
            }
            out.insert(table.name(), ids);
        }
        Ok(PartsOnDisk(out))
    }

    fn has(&self, table: &str, unit: &str) -> bool {
        self.0.get(table).is_some_and(|ids| ids.contains(unit))
    }
}

/// A checked spec, expanded.
pub struct Expanded {
    pub sweep: String,
    pub spec_sha: String,
    pub units: Vec<NewUnit>,
    /// Its classes' names where known without reading the data (progress lines use them).
    pub class_names: Vec<String>,
}

/// Parses `source`, learns the number of classes (from the data's known shape, or by loading the
/// data), and lists the units in dependency order.
pub fn expand(source: &str, file: &str) -> Result<Expanded, CoreError> {
    let spec = LoadedSpec::parse_for_plan(source, file)?;
    let shape = data_shape(&spec)?;
    let classes = shape.classes;
    spec.check_data(&shape)?;
    let mut units = Vec::new();
    let plans = plan(&spec, classes, shape.train);
    for p in &plans {
        let model = p.prepare.id.clone();
        for u in p.all_units() {
            let (_, macs) = unit_cost(&spec, &plans, p, u, &shape);
            units.push(NewUnit {
                work: unit_work(macs),
                id: u.id.clone(),
                kind: u.kind.wire(),
                params: u.params_json(),
                // A derive-data unit runs on its source setting's model (its one dependency), a
                // transfer on the other setting's; pictures and scans on none.
                model_unit: match &u.params {
                    UnitParams::Derive(d) => d.source_id.clone(),
                    UnitParams::Transfer(t) => t.to_id.clone(),
                    UnitParams::Pictures(_) | UnitParams::Scan(_) | UnitParams::Audit(_) => {
                        String::new()
                    }
                    _ if u.id == model => String::new(),
                    _ => model.clone(),
                },
                deps: u.deps.clone(),
            });
        }
    }
    Ok(Expanded {
        sweep: spec.spec.name.get_ref().clone(),
        spec_sha: hex::encode(Sha256::digest(source.as_bytes())),
        units,
        class_names: known_class_names(&spec),
    })
}

/// `n` units of the `noop` kind (the coordinator benchmark): no dependencies, no results.
pub fn noop_units(n: usize) -> Vec<NewUnit> {
    (0..n)
        .map(|i| NewUnit {
            id: format!("noop-{i:08}"),
            kind: UnitKind::Noop,
            params: String::new(),
            model_unit: String::new(),
            deps: vec![],
            work: 1,
        })
        .collect()
}

impl Core {
    /// Records a sweep's class names, for the words of progress events.
    pub fn set_class_names(&mut self, sweep: &str, names: Vec<String>) -> CResult<()> {
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
    ) -> CResult<(u64, u64, u64)> {
        let on_disk = PartsOnDisk::list(&self.results_root(sweep))?;
        self.submit_listed(sweep, spec_sha, file, source, units, &on_disk)
    }

    /// `submit`, with the sweep's parts on disk listed beforehand (without the lock).
    pub fn submit_listed(
        &mut self,
        sweep: &str,
        spec_sha: &str,
        file: &str,
        source: &str,
        units: Vec<NewUnit>,
        on_disk: &PartsOnDisk,
    ) -> CResult<(u64, u64, u64)> {
        self.ledger
            .put_spec(spec_sha, sweep, file, source, now_ms())?;
        let root = self.results_root(sweep);
        // A results folder from before protocol version 2: one schema for every failures part.
        let upgraded = tables::upgrade_failure_parts(&root.join("failures"))?;
        if upgraded > 0 {
            tracing::info!(upgraded, "failures parts given a `reason` column");
        }
        // Before version 3 the coordinator wrote scans and transfers itself, named by group; now
        // their units write them, named by unit id.
        for table in ["scan", "transfer"] {
            let removed = tables::remove_group_named_parts(&root.join(table))?;
            if removed > 0 {
                tracing::info!(
                    removed,
                    table,
                    "parts of an earlier version replaced by units"
                );
            }
        }
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
                    let mut row = UnitRow {
                        sweep: sweep.into(),
                        id: u.id.clone(),
                        kind: u.kind,
                        model_unit: u.model_unit,
                        deps: u.deps,
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
                        .filter(|t| on_disk.has(t.name(), &u.id))
                        .map(|t| {
                            let p = tables::part_path(&root.join(t.name()), &u.id);
                            (t.to_string(), p.to_string_lossy().to_string())
                        })
                        .collect();
                    let must = u.kind.tables().first();
                    if must.is_some_and(|m| parts.iter().any(|(t, _)| t == m.name())) {
                        row.state = DONE;
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
        let params: Vec<(&str, &str)> = owned
            .iter()
            .map(|(i, p)| (i.as_str(), p.as_str()))
            .collect();
        self.ledger.add_units(&rows, &params)?;
        for (row, parts) in &adopted {
            self.ledger.commit_done(row, parts, None)?;
            if row.kind == UnitKind::PrepareModel {
                self.model_from_part(&UnitKey::new(sweep, row.id.as_str()), parts)?;
            }
        }
        let total = rows.len() as u64;
        let order = rows.iter().map(|r| r.id.clone()).collect();
        drop(params);
        drop(owned);
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
                    e.insert(Box::new(UnitMem::new(row, None)));
                }
            }
        }
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
        self.rebuild_index(sweep);
        self.settle_doomed()?;
        self.emit(
            sweep,
            None,
            super::EventKind::Submitted,
            format!("{total} units, {new} new"),
        );
        Ok((total, new, done))
    }
}
