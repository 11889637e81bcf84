//! The scheduler's state: units and their leases in memory, mirrored to the ledger before any
//! answer goes out. Readiness follows dependencies (a setting's model before its searches, searches
//! before their evaluation); completions and failures are fenced by the lease's attempt number.

use super::ledger::{Checkpoint, Ledger, UnitRow};
use super::{CResult, CoreConfig, CoreError, Event};
use crate::tables::{self, FailureRow};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const PENDING: &str = "pending";
pub const LEASED: &str = "leased";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const CANCELLED: &str = "cancelled";

/// The tables a unit of each kind may write; a prepare unit must write `models`.
pub fn tables_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "prepare-model" => &["models", "training"],
        "search" => &["searches"],
        "evaluate" => &["patterns"],
        "baseline" => &["baselines"],
        _ => &[],
    }
}

/// The result tables whose parts the ledger accounts for.
pub const RESULT_TABLES: [&str; 5] = ["models", "training", "searches", "patterns", "baselines"];

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(super) type Key = (String, String);

pub(super) struct UnitMem {
    pub row: UnitRow,
    pub expires: Option<Instant>,
    pub not_before: Option<Instant>,
    pub progress: (u64, u64),
}

pub(super) struct SweepMem {
    pub spec_sha: String,
    pub finalized: bool,
    pub finalizing: bool,
    pub order: Vec<String>,
    /// Units before this index are all terminal.
    pub cursor: usize,
}

struct WorkerMem {
    name: String,
    last_seen: Instant,
}

/// A unit handed to a worker.
pub struct Leased {
    pub sweep: String,
    pub unit_id: String,
    pub kind: String,
    pub lease_id: String,
    pub attempt: u64,
    pub spec_sha: String,
    pub spec_file: String,
    pub spec_source: String,
    pub model_sha: String,
    /// (table, unit id, Parquet bytes) of the finished units it reads.
    pub inputs: Vec<(String, String, Vec<u8>)>,
    /// The last checkpoint of an earlier attempt (training units).
    pub checkpoint: Option<Checkpoint>,
}

/// Who claims to hold a unit's lease: checked against the current one before anything is written.
#[derive(Debug, Clone, Copy)]
pub struct LeaseClaim<'a> {
    pub worker: &'a str,
    pub lease_id: &'a str,
    pub attempt: u64,
}

/// A unit of a submitted spec.
pub struct NewUnit {
    pub id: String,
    pub kind: String,
    pub model_unit: String,
    pub deps: Vec<String>,
}

enum Readiness {
    Ready,
    Wait,
    Doomed(String),
}

pub struct Core {
    pub(super) cfg: CoreConfig,
    ledger: Ledger,
    pub(super) sweeps: BTreeMap<String, SweepMem>,
    pub(super) units: HashMap<Key, UnitMem>,
    leased: HashSet<Key>,
    models: HashMap<Key, String>,
    checkpoints: HashMap<Key, Checkpoint>,
    specs: HashMap<String, (String, String)>,
    workers: HashMap<String, WorkerMem>,
    events: tokio::sync::broadcast::Sender<Event>,
}

fn is_terminal(state: &str) -> bool {
    matches!(state, DONE | FAILED | CANCELLED)
}

impl Core {
    /// Opens the ledger in the state directory and reconciles it with the part files.
    pub fn open(cfg: CoreConfig, events: tokio::sync::broadcast::Sender<Event>) -> CResult<Core> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(|e| CoreError::io(&cfg.state_dir, e))?;
        let ledger = Ledger::open(&cfg.state_dir.join("ledger.sqlite"))?;
        let mut core = Core {
            cfg,
            ledger,
            sweeps: BTreeMap::new(),
            units: HashMap::new(),
            leased: HashSet::new(),
            models: HashMap::new(),
            checkpoints: HashMap::new(),
            specs: HashMap::new(),
            workers: HashMap::new(),
            events,
        };
        for (name, spec_sha, finalized) in core.ledger.sweeps()? {
            core.sweeps.insert(
                name,
                SweepMem {
                    spec_sha,
                    finalized,
                    finalizing: false,
                    order: vec![],
                    cursor: 0,
                },
            );
        }
        let now = Instant::now();
        for row in core.ledger.units()? {
            let key = (row.sweep.clone(), row.id.clone());
            if let Some(s) = core.sweeps.get_mut(&row.sweep) {
                s.order.push(row.id.clone());
            }
            // A lease taken before a restart gets a full TTL for its worker to come back.
            let expires = (row.state == LEASED).then(|| now + core.cfg.lease_ttl);
            if row.state == LEASED {
                core.leased.insert(key.clone());
            }
            core.units.insert(
                key,
                UnitMem {
                    row,
                    expires,
                    not_before: None,
                    progress: (0, 0),
                },
            );
        }
        core.checkpoints = core.ledger.checkpoints()?.into_iter().collect();
        core.reconcile()?;
        Ok(core)
    }

    pub fn results_root(&self, sweep: &str) -> PathBuf {
        self.cfg.results_dir.join(sweep)
    }

    /// Drops part files the ledger does not know (a crash between rename and commit) and requeues
    /// done units whose parts are gone; loads the model hash of every prepared setting.
    fn reconcile(&mut self) -> CResult<()> {
        let parts = self.ledger.parts()?;
        let known: HashSet<&str> = parts.iter().map(|p| p.0.as_str()).collect();
        let mut dropped = 0;
        for sweep in self.sweeps.keys() {
            let root = self.cfg.results_dir.join(sweep);
            for table in RESULT_TABLES {
                let dir = root.join(table);
                for name in tables::done_units(&dir)? {
                    let path = tables::part_path(&dir, &name);
                    if !known.contains(path.to_string_lossy().as_ref()) {
                        std::fs::remove_file(&path).map_err(|e| CoreError::io(&path, e))?;
                        dropped += 1;
                    }
                }
            }
        }
        let mut by_unit: HashMap<Key, Vec<(String, String)>> = HashMap::new();
        for (path, sweep, unit, table) in parts {
            by_unit
                .entry((sweep, unit))
                .or_default()
                .push((table, path));
        }
        let mut requeued = Vec::new();
        for (key, u) in self.units.iter_mut() {
            if u.row.state != DONE {
                continue;
            }
            let ps = by_unit.get(key).cloned().unwrap_or_default();
            let must = tables_of(&u.row.kind).first();
            let missing = ps.iter().any(|(_, p)| !Path::new(p).exists())
                || must.is_some_and(|m| !ps.iter().any(|(t, _)| t == m));
            if missing {
                u.row.state = PENDING.into();
                requeued.push(key.clone());
            } else if u.row.kind == "prepare-model" {
                if let Some((_, p)) = ps.iter().find(|(t, _)| t == "models") {
                    if let Ok(rows) = tables::read_model_rows(Path::new(p)) {
                        if let Some(r) = rows.first() {
                            self.models.insert(key.clone(), r.checkpoint_sha256.clone());
                        }
                    }
                }
            }
        }
        for key in &requeued {
            self.ledger.forget_parts_of(&key.0, &key.1)?;
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

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn counts(&self, sweep: &str) -> (u64, u64, u64, u64) {
        let (mut total, mut done, mut failed, mut leased) = (0, 0, 0, 0);
        if let Some(s) = self.sweeps.get(sweep) {
            for id in &s.order {
                let u = &self.units[&(sweep.to_string(), id.clone())];
                total += 1;
                match u.row.state.as_str() {
                    DONE => done += 1,
                    FAILED | CANCELLED => failed += 1,
                    LEASED => leased += 1,
                    _ => {}
                }
            }
        }
        (total, done, failed, leased)
    }

    pub(super) fn emit(&self, sweep: &str, unit: Option<&UnitRow>, state: &str, message: String) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let (total, done, failed, leased) = self.counts(sweep);
        let finished = self.sweeps.get(sweep).is_some_and(|s| s.finalized);
        let mut e = Event {
            sweep: sweep.to_string(),
            total,
            done,
            failed,
            leased,
            state: state.to_string(),
            message,
            finished,
            ..Default::default()
        };
        if let Some(u) = unit {
            e.unit_id = u.id.clone();
            e.kind = u.kind.clone();
            e.worker = self
                .workers
                .get(&u.worker)
                .map(|w| w.name.clone())
                .unwrap_or_else(|| u.worker.clone());
        }
        let _ = self.events.send(e);
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
        self.ledger
            .put_spec(spec_sha, sweep, file, source, now_ms())?;
        let root = self.results_root(sweep);
        let mut rows = Vec::new();
        let mut adopted = Vec::new();
        let (mut new, mut done) = (0, 0);
        for (ord, u) in units.into_iter().enumerate() {
            let key = (sweep.to_string(), u.id.clone());
            let mut row = match self.units.get(&key) {
                Some(m) => m.row.clone(),
                None => {
                    new += 1;
                    let mut row = UnitRow {
                        sweep: sweep.into(),
                        id: u.id.clone(),
                        kind: u.kind.clone(),
                        model_unit: u.model_unit,
                        deps: u.deps,
                        spec_sha: spec_sha.into(),
                        state: PENDING.into(),
                        attempt: 0,
                        failures: 0,
                        lease_id: String::new(),
                        worker: String::new(),
                        error: String::new(),
                        ord: 0,
                    };
                    let parts: Vec<(String, String)> = tables_of(&u.kind)
                        .iter()
                        .map(|t| {
                            let p = tables::part_path(&root.join(t), &u.id);
                            (t.to_string(), p.to_string_lossy().to_string())
                        })
                        .filter(|(_, p)| Path::new(p).exists())
                        .collect();
                    let must = tables_of(&u.kind).first();
                    if must.is_some_and(|m| parts.iter().any(|(t, _)| t == m)) {
                        row.state = DONE.into();
                        adopted.push((row.clone(), parts));
                    }
                    row
                }
            };
            row.spec_sha = spec_sha.into();
            row.ord = ord as i64;
            if row.state == DONE {
                done += 1;
            }
            rows.push(row);
        }
        self.ledger.add_units(&rows)?;
        for (row, parts) in &adopted {
            self.ledger.commit_done(row, parts)?;
            if row.kind == "prepare-model" {
                if let Some((_, p)) = parts.iter().find(|(t, _)| t == "models") {
                    if let Some(r) = tables::read_model_rows(Path::new(p))?.first() {
                        self.models
                            .insert((sweep.into(), row.id.clone()), r.checkpoint_sha256.clone());
                    }
                }
            }
        }
        let total = rows.len() as u64;
        let order = rows.iter().map(|r| r.id.clone()).collect();
        for row in rows {
            let key = (sweep.to_string(), row.id.clone());
            let m = self.units.entry(key).or_insert(UnitMem {
                row: row.clone(),
                expires: None,
                not_before: None,
                progress: (0, 0),
            });
            m.row.spec_sha = row.spec_sha;
            m.row.ord = row.ord;
        }
        self.sweeps.insert(
            sweep.to_string(),
            SweepMem {
                spec_sha: spec_sha.into(),
                finalized: false,
                finalizing: false,
                order,
                cursor: 0,
            },
        );
        self.emit(
            sweep,
            None,
            "submitted",
            format!("{total} units, {new} new"),
        );
        Ok((total, new, done))
    }

    /// Puts every leased unit back in the queue without counting an attempt (the in-process
    /// runner, whose earlier worker died with the process).
    pub fn release_leases(&mut self) -> CResult<usize> {
        let keys: Vec<Key> = self.leased.drain().collect();
        for key in &keys {
            let m = self.units.get_mut(key).expect("leased units exist");
            m.row.state = PENDING.into();
            m.row.lease_id.clear();
            m.expires = None;
        }
        let rows: Vec<&UnitRow> = keys.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        Ok(keys.len())
    }

    pub fn register(&mut self, worker_id: &str, name: &str) {
        self.workers.insert(
            worker_id.to_string(),
            WorkerMem {
                name: name.to_string(),
                last_seen: Instant::now(),
            },
        );
    }

    pub fn knows_worker(&self, worker_id: &str) -> bool {
        self.workers.contains_key(worker_id)
    }

    fn readiness(&self, u: &UnitRow) -> Readiness {
        let state = |id: &str| {
            self.units
                .get(&(u.sweep.clone(), id.to_string()))
                .map(|m| m.row.state.as_str())
                .unwrap_or(FAILED)
        };
        match u.kind.as_str() {
            "search" | "baseline" => match state(&u.model_unit) {
                DONE => Readiness::Ready,
                FAILED | CANCELLED => Readiness::Doomed(format!(
                    "its model (prepare-model {}) could not be prepared",
                    u.model_unit
                )),
                _ => Readiness::Wait,
            },
            "evaluate" => {
                if u.deps.iter().any(|d| !is_terminal(state(d))) {
                    Readiness::Wait
                } else if u.deps.iter().any(|d| state(d) == DONE) {
                    Readiness::Ready
                } else {
                    Readiness::Doomed("none of its searches succeeded".into())
                }
            }
            _ => Readiness::Ready,
        }
    }

    /// Leases up to `max` ready units to `worker`: first one whose model the worker holds (else the
    /// first ready one), then more of the same kind on the same model.
    pub fn lease(
        &mut self,
        worker: &str,
        max: usize,
        held: &HashSet<String>,
    ) -> CResult<Vec<Leased>> {
        if let Some(w) = self.workers.get_mut(worker) {
            w.last_seen = Instant::now();
        }
        let now = Instant::now();
        let mut doomed: Vec<(Key, String)> = Vec::new();
        let mut ready: Vec<Key> = Vec::new();
        let mut first_held = None;
        'sweeps: for (name, s) in &self.sweeps {
            for id in &s.order[s.cursor..] {
                let key = (name.clone(), id.clone());
                let m = &self.units[&key];
                if m.row.state != PENDING || m.not_before.is_some_and(|t| t > now) {
                    continue;
                }
                match self.readiness(&m.row) {
                    Readiness::Ready => {
                        let model = self.models.get(&(name.clone(), m.row.model_unit.clone()));
                        if first_held.is_none() && model.is_some_and(|h| held.contains(h)) {
                            first_held = Some(ready.len());
                        }
                        ready.push(key);
                        // Enough to choose from without scanning a huge sweep every call.
                        if ready.len() >= 4 * max.max(1) + 64 && first_held.is_some() {
                            break 'sweeps;
                        }
                    }
                    Readiness::Wait => {}
                    Readiness::Doomed(why) => doomed.push((key, why)),
                }
            }
        }
        for (key, why) in doomed {
            self.settle_failed(&key, why)?;
        }
        let Some(first) = first_held.or((!ready.is_empty()).then_some(0)) else {
            return Ok(vec![]);
        };
        let lead = self.units[&ready[first]].row.clone();
        let mut picked = vec![ready[first].clone()];
        if lead.kind != "prepare-model" {
            for key in &ready {
                if picked.len() >= max.max(1) {
                    break;
                }
                let r = &self.units[key].row;
                if key != &ready[first]
                    && r.sweep == lead.sweep
                    && r.kind == lead.kind
                    && r.model_unit == lead.model_unit
                {
                    picked.push(key.clone());
                }
            }
        }
        let expires = now + self.cfg.lease_ttl;
        let mut out = Vec::new();
        for key in &picked {
            let m = self.units.get_mut(key).expect("picked units exist");
            m.row.state = LEASED.into();
            m.row.attempt += 1;
            m.row.lease_id = format!("{:016x}", rand::random::<u64>());
            m.row.worker = worker.to_string();
            m.expires = Some(expires);
            m.progress = (0, 0);
            self.leased.insert(key.clone());
        }
        let rows: Vec<&UnitRow> = picked.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        for key in &picked {
            let row = self.units[key].row.clone();
            out.push(self.leased_unit(&row)?);
            self.emit(&row.sweep, Some(&row), LEASED, String::new());
        }
        Ok(out)
    }

    fn leased_unit(&mut self, row: &UnitRow) -> CResult<Leased> {
        if !self.specs.contains_key(&row.spec_sha) {
            let spec = self.ledger.spec(&row.spec_sha)?.unwrap_or_default();
            self.specs.insert(row.spec_sha.clone(), spec);
        }
        let (file, source) = self.specs[&row.spec_sha].clone();
        let mut inputs = Vec::new();
        if row.kind == "evaluate" {
            let dir = self.results_root(&row.sweep).join("searches");
            for d in &row.deps {
                if self.units[&(row.sweep.clone(), d.clone())].row.state == DONE {
                    let p = tables::part_path(&dir, d);
                    let bytes = std::fs::read(&p).map_err(|e| CoreError::io(&p, e))?;
                    inputs.push(("searches".to_string(), d.clone(), bytes));
                }
            }
        }
        Ok(Leased {
            sweep: row.sweep.clone(),
            unit_id: row.id.clone(),
            kind: row.kind.clone(),
            lease_id: row.lease_id.clone(),
            attempt: row.attempt,
            spec_sha: row.spec_sha.clone(),
            spec_file: file,
            spec_source: source,
            model_sha: self
                .models
                .get(&(row.sweep.clone(), row.model_unit.clone()))
                .cloned()
                .unwrap_or_default(),
            inputs,
            checkpoint: self
                .checkpoints
                .get(&(row.sweep.clone(), row.id.clone()))
                .cloned(),
        })
    }

    /// Records a newer checkpoint of a unit whose lease the reporter holds; the older one's
    /// artifact is deleted.
    fn record_checkpoint(&mut self, key: &Key, c: Checkpoint) -> CResult<()> {
        if self.checkpoints.get(key).is_some_and(|old| old.0 >= c.0) {
            return Ok(());
        }
        if self.ledger.artifact(&c.1)?.is_none() {
            return Err(CoreError::Invalid(format!(
                "checkpoint artifact {} was never put",
                c.1
            )));
        }
        self.ledger.put_checkpoint(&key.0, &key.1, &c)?;
        // Uploads older than the recorded one (earlier epochs) are of no further use.
        let dir = self.checkpoint_dir(&key.0, &key.1);
        let keep = crate::work::artifact_path(&dir, &c.1);
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
    fn drop_checkpoints(&mut self, key: &Key) -> CResult<()> {
        self.checkpoints.remove(key);
        self.ledger.drop_checkpoint(&key.0, &key.1)?;
        let dir = self.checkpoint_dir(&key.0, &key.1);
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

    /// Checks that `worker` holds the current lease (`lease_id`, `attempt`) of the unit.
    fn fenced(&self, key: &Key, claim: LeaseClaim) -> CResult<()> {
        let LeaseClaim {
            worker,
            lease_id,
            attempt,
        } = claim;
        let Some(m) = self.units.get(key) else {
            return Err(CoreError::NotFound(format!(
                "unit {} of sweep {}",
                key.1, key.0
            )));
        };
        let r = &m.row;
        if r.state != LEASED || r.attempt != attempt || r.lease_id != lease_id || r.worker != worker
        {
            return Err(CoreError::Stale(format!(
                "unit {} attempt {attempt} is not the current lease (state {}, current attempt {})",
                key.1, r.state, r.attempt
            )));
        }
        Ok(())
    }

    /// Writes a unit's parts and marks it done, if the caller holds its current lease.
    pub fn complete(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        parts: Vec<(String, Vec<u8>)>,
    ) -> CResult<()> {
        self.fenced(key, claim)?;
        let kind = self.units[key].row.kind.clone();
        let allowed = tables_of(&kind);
        for (t, bytes) in &parts {
            if !allowed.contains(&t.as_str()) {
                return Err(CoreError::Invalid(format!(
                    "a {kind} unit cannot write table `{t}`"
                )));
            }
            tables::check_parquet(bytes)
                .map_err(|e| CoreError::Invalid(format!("part for `{t}`: {e}")))?;
        }
        if let Some(must) = allowed.first() {
            if !parts.iter().any(|(t, _)| t == must) {
                return Err(CoreError::Invalid(format!(
                    "a {kind} unit must write `{must}`"
                )));
            }
        }
        let root = self.results_root(&key.0);
        let mut recorded = Vec::new();
        for (t, bytes) in &parts {
            let path = tables::write_part_bytes(&root.join(t), &key.1, bytes)?;
            recorded.push((t.clone(), path.to_string_lossy().to_string()));
        }
        if kind == "prepare-model" {
            let (_, p) = recorded
                .iter()
                .find(|(t, _)| t == "models")
                .expect("checked above");
            let sha = tables::read_model_rows(Path::new(p))?
                .first()
                .map(|r| r.checkpoint_sha256.clone())
                .unwrap_or_default();
            self.models.insert(key.clone(), sha);
        }
        let m = self.units.get_mut(key).expect("fenced");
        m.row.state = DONE.into();
        m.row.error.clear();
        m.expires = None;
        let row = m.row.clone();
        self.ledger.commit_done(&row, &recorded)?;
        self.leased.remove(key);
        if kind == "prepare-model" {
            self.drop_checkpoints(key)?;
        }
        self.emit(&key.0, Some(&row), DONE, String::new());
        Ok(())
    }

    /// Records a failed attempt: retried with backoff up to the limit, or failed for good.
    /// A unit `handed_back` by a stopping worker is requeued without counting an attempt.
    pub fn fail(
        &mut self,
        key: &Key,
        claim: LeaseClaim,
        error: &str,
        retryable: bool,
        handed_back: bool,
    ) -> CResult<()> {
        self.fenced(key, claim)?;
        self.failed_attempt(key, error, retryable, handed_back)
    }

    fn failed_attempt(
        &mut self,
        key: &Key,
        error: &str,
        retryable: bool,
        handed_back: bool,
    ) -> CResult<()> {
        self.leased.remove(key);
        let max = self.cfg.max_attempts;
        let backoff = self.cfg.backoff_base;
        let backoff_max = self.cfg.backoff_max;
        let root = self.results_root(&key.0);
        let m = self.units.get_mut(key).expect("caller checked");
        m.expires = None;
        let worker = m.row.worker.clone();
        let state = if handed_back {
            m.row.state = PENDING.into();
            m.not_before = None;
            "handed-back"
        } else {
            m.row.failures += 1;
            let row = FailureRow {
                unit_id: key.1.clone(),
                unit_kind: m.row.kind.clone(),
                attempt: m.row.attempt as i64,
                worker: worker.clone(),
                error: error.to_string(),
                retryable,
                time_ms: now_ms(),
            };
            tables::write_part(
                &root.join("failures"),
                &format!("{}-a{}", key.1, m.row.attempt),
                &tables::failures_batch(&[row]),
            )?;
            m.row.error = error.to_string();
            if !retryable || m.row.failures >= max {
                m.row.state = FAILED.into();
                FAILED
            } else {
                m.row.state = PENDING.into();
                let wait = backoff.saturating_mul(1 << (m.row.failures - 1).min(16));
                m.not_before = Some(Instant::now() + wait.min(backoff_max));
                "retrying"
            }
        };
        m.row.lease_id.clear();
        let row = m.row.clone();
        self.ledger.update_unit(&row)?;
        self.emit(&key.0, Some(&row), state, error.to_string());
        if row.state == FAILED {
            self.settle(&key.0)?;
        }
        Ok(())
    }

    /// Fails a unit that can never run (its dependency failed) without counting an attempt.
    fn settle_failed(&mut self, key: &Key, why: String) -> CResult<()> {
        let m = self.units.get_mut(key).expect("exists");
        m.row.state = FAILED.into();
        m.row.error = why.clone();
        let row = m.row.clone();
        self.ledger.update_unit(&row)?;
        self.emit(&key.0, Some(&row), FAILED, why);
        Ok(())
    }

    /// Fails every pending unit of the sweep whose dependencies failed (in plan order, so a chain
    /// of failures settles in one pass).
    fn settle(&mut self, sweep: &str) -> CResult<()> {
        let Some(s) = self.sweeps.get(sweep) else {
            return Ok(());
        };
        let ids: Vec<String> = s.order[s.cursor..].to_vec();
        for id in ids {
            let key = (sweep.to_string(), id);
            let m = &self.units[&key];
            if m.row.state != PENDING {
                continue;
            }
            if let Readiness::Doomed(why) = self.readiness(&m.row) {
                self.settle_failed(&key, why)?;
            }
        }
        Ok(())
    }

    /// Returns the expired leases to the queue, each counted as a failed attempt.
    pub fn expire(&mut self) -> CResult<usize> {
        let now = Instant::now();
        let expired: Vec<Key> = self
            .leased
            .iter()
            .filter(|k| self.units[*k].expires.is_some_and(|t| t <= now))
            .cloned()
            .collect();
        for key in &expired {
            let worker = self.units[key].row.worker.clone();
            let name = self
                .workers
                .get(&worker)
                .map(|w| w.name.clone())
                .unwrap_or(worker);
            let msg = format!("lease expired: worker {name} stopped heartbeating");
            self.failed_attempt(key, &msg, true, false)?;
        }
        Ok(expired.len())
    }

    /// Extends every lease the worker holds and records progress; returns the units it should drop
    /// (cancelled, or no longer its lease), or None when the worker must register again.
    pub fn heartbeat(
        &mut self,
        worker: &str,
        progress: &[(String, u64, u64, u64, Option<Checkpoint>)],
    ) -> CResult<Option<Vec<String>>> {
        let Some(w) = self.workers.get_mut(worker) else {
            return Ok(None);
        };
        w.last_seen = Instant::now();
        let expires = Instant::now() + self.cfg.lease_ttl;
        for key in &self.leased {
            let m = self.units.get_mut(key).expect("leased units exist");
            if m.row.worker == worker {
                m.expires = Some(expires);
            }
        }
        let mut cancel = Vec::new();
        for (unit, attempt, step, total, checkpoint) in progress {
            let found = self.leased.iter().find(|k| &k.1 == unit).cloned();
            let mine = found.as_ref().is_some_and(|k| {
                let r = &self.units[k].row;
                r.worker == worker && r.attempt == *attempt
            });
            match (found, mine) {
                (Some(k), true) => {
                    if let Some(c) = checkpoint {
                        self.record_checkpoint(&k, c.clone())?;
                    }
                    let m = self.units.get_mut(&k).expect("found");
                    if m.progress != (*step, *total) {
                        m.progress = (*step, *total);
                        let row = m.row.clone();
                        let mut e_msg = String::new();
                        if *total > 0 {
                            e_msg = format!("{step}/{total}");
                        }
                        self.emit(&k.0, Some(&row), "progress", e_msg);
                    }
                }
                _ => cancel.push(unit.clone()),
            }
        }
        Ok(Some(cancel))
    }

    /// Cancels a sweep's pending and leased units.
    pub fn cancel(&mut self, sweep: &str) -> CResult<u64> {
        let Some(s) = self.sweeps.get(sweep) else {
            return Err(CoreError::NotFound(format!("sweep {sweep}")));
        };
        let keys: Vec<Key> = s
            .order
            .iter()
            .map(|id| (sweep.to_string(), id.clone()))
            .collect();
        let mut changed = Vec::new();
        for key in keys {
            let m = self.units.get_mut(&key).expect("exists");
            if matches!(m.row.state.as_str(), PENDING | LEASED) {
                m.row.state = CANCELLED.into();
                m.row.error = "cancelled".into();
                m.expires = None;
                self.leased.remove(&key);
                changed.push(key);
            }
        }
        let rows: Vec<&UnitRow> = changed.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        self.emit(
            sweep,
            None,
            CANCELLED,
            format!("{} units cancelled", changed.len()),
        );
        Ok(changed.len() as u64)
    }

    /// Puts a sweep's failed units back in the queue with a fresh retry budget.
    pub fn retry_failed(&mut self, sweep: &str) -> CResult<u64> {
        let Some(s) = self.sweeps.get_mut(sweep) else {
            return Err(CoreError::NotFound(format!("sweep {sweep}")));
        };
        s.cursor = 0;
        s.finalized = false;
        let keys: Vec<Key> = s
            .order
            .iter()
            .map(|id| (sweep.to_string(), id.clone()))
            .collect();
        let mut changed = Vec::new();
        for key in keys {
            let m = self.units.get_mut(&key).expect("exists");
            if m.row.state == FAILED {
                m.row.state = PENDING.into();
                m.row.failures = 0;
                m.row.error.clear();
                m.not_before = None;
                changed.push(key);
            }
        }
        let rows: Vec<&UnitRow> = changed.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        self.ledger.set_finalized(sweep, false)?;
        self.emit(
            sweep,
            None,
            "retrying",
            format!("{} units requeued", changed.len()),
        );
        Ok(changed.len() as u64)
    }

    /// Sweeps whose units are all terminal and that still need their pictures and scan; marks them
    /// as being finalized.
    pub fn take_finishable(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, s) in self.sweeps.iter_mut() {
            while s.cursor < s.order.len()
                && is_terminal(
                    &self.units[&(name.clone(), s.order[s.cursor].clone())]
                        .row
                        .state,
                )
            {
                s.cursor += 1;
            }
            if s.cursor == s.order.len() && !s.finalized && !s.finalizing {
                s.finalizing = true;
                out.push((name.clone(), s.spec_sha.clone()));
            }
        }
        out
    }

    pub fn spec_of(&mut self, sha: &str) -> CResult<(String, String)> {
        if !self.specs.contains_key(sha) {
            let spec = self.ledger.spec(sha)?.unwrap_or_default();
            self.specs.insert(sha.to_string(), spec);
        }
        Ok(self.specs[sha].clone())
    }

    pub fn set_finalized(&mut self, sweep: &str, message: String) -> CResult<()> {
        if let Some(s) = self.sweeps.get_mut(sweep) {
            s.finalizing = false;
            // A retry or resubmission while finalizing reopened the sweep: finalize again later.
            if s.cursor < s.order.len() {
                return Ok(());
            }
            s.finalized = true;
        }
        self.ledger.set_finalized(sweep, true)?;
        self.emit(sweep, None, "finished", message);
        Ok(())
    }

    pub fn artifact_path(&self, sha: &str) -> CResult<Option<String>> {
        Ok(self.ledger.artifact(sha)?)
    }

    pub fn put_artifact(&self, sha: &str, path: &str, bytes: u64) -> CResult<()> {
        Ok(self.ledger.put_artifact(sha, path, bytes)?)
    }

    pub fn workers(&self) -> Vec<(String, String, u64, u64)> {
        self.workers
            .iter()
            .map(|(id, w)| {
                let leased = self
                    .leased
                    .iter()
                    .filter(|k| self.units[*k].row.worker == *id)
                    .count();
                (
                    id.clone(),
                    w.name.clone(),
                    leased as u64,
                    w.last_seen.elapsed().as_millis() as u64,
                )
            })
            .collect()
    }
}
