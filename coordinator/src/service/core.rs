//! The scheduler's state: units and their leases in memory, mirrored to the ledger before any
//! answer goes out. Readiness follows dependencies (a setting's model before its searches, searches
//! before their evaluation); completions and failures are fenced by the lease's attempt number.

use super::ledger::{Checkpoint, Ledger, UnitRow};
use super::queue::{DepCounts, SweepIndex};
use super::{CResult, CoreConfig, CoreError, Event, EventKind};
use iscp_sweep::tables;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use super::state::UnitState;
pub const PENDING: UnitState = UnitState::Pending;
pub const LEASED: UnitState = UnitState::Leased;
pub const DONE: UnitState = UnitState::Done;
pub const FAILED: UnitState = UnitState::Failed;
pub const CANCELLED: UnitState = UnitState::Cancelled;

pub use iscp_proto::v1::UnitKind;

/// The result tables (`Table::RESULTS`: those whose parts the ledger accounts for).
pub use iscp_proto::Table;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Every unit is named by its sweep and its id.
pub type Key = UnitKey;
pub use iscp_proto::UnitKey;

/// The slot a leased unit runs on: its device, and what it works on in words (decoded when
/// someone watches: at the lease, or at its first progress after a watch began).
#[derive(Debug, Default, Clone)]
pub struct LeaseSlot {
    pub device: String,
    pub label: Option<iscp_proto::v1::UnitLabel>,
    /// Whether `label` was decoded (units with no words have none).
    pub decoded: bool,
}

pub(super) struct UnitMem {
    pub row: UnitRow,
    pub expires: Option<Instant>,
    pub not_before: Option<Instant>,
    pub progress: (u64, u64),
    /// Its position in its sweep's plan (`SweepMem::order`).
    pub seq: usize,
    /// Its `deps` by state, kept up to date as they change.
    pub deps_in: DepCounts,
    /// Whether its model unit is also among its `deps`.
    pub model_in_deps: bool,
}

impl UnitMem {
    pub fn new(row: UnitRow, expires: Option<Instant>) -> Self {
        UnitMem {
            row,
            expires,
            not_before: None,
            progress: (0, 0),
            seq: usize::MAX,
            deps_in: DepCounts::default(),
            model_in_deps: false,
        }
    }
}

pub(super) struct SweepMem {
    pub finalized: bool,
    /// Its report is being written (outside the lock); it is finished once that ends.
    pub reporting: bool,
    pub order: Vec<String>,
    /// Ready units, counts and dependents (`queue`).
    pub ix: SweepIndex,
    /// Its classes' names (empty where only the data knows them).
    pub class_names: Vec<String>,
}

impl SweepMem {
    pub fn new(order: Vec<String>, finalized: bool) -> Self {
        SweepMem {
            finalized,
            reporting: false,
            order,
            ix: SweepIndex::default(),
            class_names: Vec::new(),
        }
    }
}

pub(super) struct WorkerMem {
    pub name: String,
    pub last_seen: Instant,
}

/// A unit handed to a worker.
pub struct Leased {
    pub sweep: String,
    pub unit_id: String,
    pub kind: UnitKind,
    pub lease_id: String,
    pub attempt: u64,
    pub spec_sha: String,
    pub spec_file: String,
    pub spec_source: String,
    pub model_sha: String,
    /// The unit's parameters: the JSON its id hashes.
    pub params: String,
    /// The last checkpoint of an earlier attempt (training units).
    pub checkpoint: Option<Checkpoint>,
    /// A derived setting's prepare: the artifacts holding its shards' parts, in shard order.
    pub input_artifacts: Vec<String>,
}

impl Leased {
    /// What this unit adds to a lease message, from above: its strings, and room for the
    /// fields' framing.
    pub fn wire_bytes(&self) -> usize {
        let artifacts: usize = self.input_artifacts.iter().map(|a| a.len() + 8).sum();
        4096 + self.spec_file.len() + self.spec_source.len() + self.params.len() + artifacts
    }
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
    pub kind: UnitKind,
    /// The JSON its id hashes (empty for `noop` units): what a lease carries to the worker.
    pub params: String,
    pub model_unit: String,
    pub deps: Vec<String>,
    /// Its estimated work (`iscp_sweep::cost::unit_work`).
    pub work: u64,
}

pub(super) enum Readiness {
    Ready,
    Wait,
    Doomed(String),
}

pub struct Core {
    pub(super) cfg: CoreConfig,
    pub(super) ledger: Ledger,
    pub(super) sweeps: BTreeMap<String, SweepMem>,
    /// Boxed: the map's slots stay small (a million units need two million slots).
    pub(super) units: HashMap<Key, Box<UnitMem>>,
    /// The leased units, with the slot each runs on (what progress events say of it).
    pub(super) leased: HashMap<Key, LeaseSlot>,
    pub(super) models: HashMap<Key, String>,
    pub(super) checkpoints: HashMap<Key, Checkpoint>,
    /// Artifact hashes of finished derive-data parts (computed when first needed).
    pub(super) derived: HashMap<Key, String>,
    pub(super) specs: HashMap<String, (String, String)>,
    pub(super) workers: HashMap<String, WorkerMem>,
    pub(super) events: tokio::sync::broadcast::Sender<Event>,
    /// Pending units in backoff, by the time they may run again.
    pub(super) delayed: BTreeSet<(Instant, Key)>,
    /// Pending units found doomed (a dependency failed for good), to fail.
    pub(super) doomed: Vec<Key>,
    /// The prepare units that made each model (by hash): a worker holding it prefers their units.
    pub(super) by_sha: HashMap<String, Vec<Key>>,
    /// The sweep the last lease without a held model came from (leases go round the sweeps).
    pub(super) last_served: Option<String>,
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
            leased: HashMap::new(),
            models: HashMap::new(),
            checkpoints: HashMap::new(),
            derived: HashMap::new(),
            specs: HashMap::new(),
            workers: HashMap::new(),
            events,
            delayed: BTreeSet::new(),
            doomed: Vec::new(),
            by_sha: HashMap::new(),
            last_served: None,
        };
        for (name, _, finalized) in core.ledger.sweeps()? {
            core.sweeps.insert(name, SweepMem::new(vec![], finalized));
        }
        for (name, names) in core.ledger.class_names()? {
            if let Some(s) = core.sweeps.get_mut(&name) {
                s.class_names = names;
            }
        }
        let now = Instant::now();
        for row in core.ledger.units()? {
            let key = UnitKey::new(row.sweep.as_str(), row.id.as_str());
            if let Some(s) = core.sweeps.get_mut(&row.sweep) {
                s.order.push(row.id.clone());
            }
            // A lease taken before a restart gets a full TTL for its worker to come back.
            let expires = (row.state == LEASED).then(|| now + core.cfg.lease_ttl);
            if row.state == LEASED {
                core.leased.insert(key.clone(), LeaseSlot::default());
            }
            core.units.insert(key, Box::new(UnitMem::new(row, expires)));
        }
        for ((sweep, unit), sha) in core.ledger.models()? {
            core.set_model(UnitKey::new(sweep, unit), sha);
        }
        core.checkpoints = core
            .ledger
            .checkpoints()?
            .into_iter()
            .map(|((sweep, unit), c)| (UnitKey::new(sweep, unit), c))
            .collect();
        core.reconcile()?;
        let names: Vec<String> = core.sweeps.keys().cloned().collect();
        for name in names {
            core.rebuild_index(&name);
        }
        core.settle_doomed()?;
        Ok(core)
    }

    pub fn results_root(&self, sweep: &str) -> PathBuf {
        self.cfg.results_dir.join(sweep)
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// (total, done, failed or cancelled, leased) of a sweep, from its index.
    fn counts(&self, sweep: &str) -> (u64, u64, u64, u64) {
        self.sweeps
            .get(sweep)
            .map(|s| s.ix.totals())
            .unwrap_or_default()
    }

    /// Records the model a prepare unit made.
    pub(super) fn set_model(&mut self, key: Key, sha: String) {
        if let Some(old) = self.models.get(&key) {
            if let Some(v) = self.by_sha.get_mut(old) {
                v.retain(|k| k != &key);
            }
        }
        self.by_sha
            .entry(sha.clone())
            .or_default()
            .push(key.clone());
        self.models.insert(key, sha);
    }

    pub(super) fn emit(
        &self,
        sweep: &str,
        unit: Option<&UnitRow>,
        event: EventKind,
        message: String,
    ) {
        self.send_event(sweep, unit, event, message, (0, 0));
    }

    /// Whether anyone watches (events are only built for watchers).
    pub(super) fn watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// The words for a unit of `row`'s kind with `params` (None for units that have none).
    fn label_of(&self, row: &UnitRow, params: &str) -> Option<iscp_proto::v1::UnitLabel> {
        let names = self
            .sweeps
            .get(row.sweep.as_str())
            .map_or(&[][..], |s| &s.class_names[..]);
        iscp_sweep::units::UnitKind::from_wire(row.kind)
            .and_then(|k| iscp_sweep::label::label(k, params, names))
    }

    /// A unit was leased (its slot recorded in `leased`): the event carries the slot's device
    /// and what the unit works on, decoded from the parameters the lease carries.
    pub(super) fn emit_leased(&mut self, key: &Key, unit: &UnitRow, params: &str) {
        let Some(mut e) = self.event(&unit.sweep, Some(unit), EventKind::Leased, String::new())
        else {
            return;
        };
        let label = self.label_of(unit, params);
        if let Some(slot) = self.leased.get_mut(key) {
            slot.label.clone_from(&label);
            slot.decoded = true;
            e.device = slot.device.clone();
        }
        e.label = label;
        let _ = self.events.send(e);
    }

    /// A unit's progress: `step` of `total` (its kind's units: epochs' batches, search steps).
    /// It carries the unit's slot and words too, so that a watch that began after the lease
    /// still says what runs where; the words are decoded once, at the first such step.
    /// Progress is for people: a ledger read that fails leaves the words out, never the beat.
    pub(super) fn emit_step(&mut self, key: &Key, unit: &UnitRow, step: u64, total: u64) {
        let Some(mut e) = self.event(&unit.sweep, Some(unit), EventKind::Progress, String::new())
        else {
            return;
        };
        (e.step, e.steps) = (step, total);
        if self.leased.get(key).is_some_and(|s| !s.decoded) {
            let params = match self.ledger.params(&unit.id) {
                Ok(p) => p.unwrap_or_default(),
                Err(err) => {
                    tracing::warn!("the parameters of {key} for its progress words: {err}");
                    String::new()
                }
            };
            let label = self.label_of(unit, &params);
            if let Some(s) = self.leased.get_mut(key) {
                (s.label, s.decoded) = (label, true);
            }
        }
        if let Some(s) = self.leased.get(key) {
            e.device = s.device.clone();
            e.label = s.label.clone();
        }
        let _ = self.events.send(e);
    }

    fn send_event(
        &self,
        sweep: &str,
        unit: Option<&UnitRow>,
        event: EventKind,
        message: String,
        (step, steps): (u64, u64),
    ) {
        if let Some(mut e) = self.event(sweep, unit, event, message) {
            (e.step, e.steps) = (step, steps);
            let _ = self.events.send(e);
        }
    }

    /// The event about `unit` (or the sweep) with the sweep's counts; None when nobody watches.
    fn event(
        &self,
        sweep: &str,
        unit: Option<&UnitRow>,
        event: EventKind,
        message: String,
    ) -> Option<Event> {
        if !self.watched() {
            return None;
        }
        let (total, done, failed, leased) = self.counts(sweep);
        let s = self.sweeps.get(sweep);
        let finished = s.is_some_and(|s| s.finalized);
        let (work_total, work_done) = s.map(|s| s.ix.work_totals()).unwrap_or_default();
        let mut e = Event {
            sweep: sweep.to_string(),
            total,
            done,
            failed,
            leased,
            state: event,
            message,
            finished,
            work_total,
            work_done,
            ..Default::default()
        };
        if let Some(u) = unit {
            e.unit_id = u.id.clone();
            e.unit_work = u.work;
            e.kind = u.kind.to_string();
            e.worker = self
                .workers
                .get(&u.worker)
                .map(|w| w.name.clone())
                .unwrap_or_else(|| u.worker.clone());
        }
        Some(e)
    }

    /// Puts every leased unit back in the queue without counting an attempt (the in-process
    /// runner, whose earlier worker died with the process).
    pub fn release_leases(&mut self) -> CResult<usize> {
        let keys: Vec<Key> = self.leased.drain().map(|(k, _)| k).collect();
        for key in &keys {
            let m = self.units.get_mut(key).expect("leased units exist");
            m.row.lease_id.clear();
            m.expires = None;
            self.set_state(key, PENDING);
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

    /// Learns the model hash from a prepare unit's `models` part (its parts: (table, path)) and
    /// keeps it in the ledger: only for parts adopted from disk, and ledgers from before the hash
    /// travelled with the completion.
    pub(super) fn model_from_part(&mut self, key: &Key, parts: &[(String, String)]) -> CResult<()> {
        if let Some((_, p)) = parts.iter().find(|(t, _)| t == "models") {
            if let Some(r) = tables::read_model_rows(Path::new(p))?.first() {
                self.ledger
                    .put_model(&key.sweep, &key.unit, &r.checkpoint_sha256)?;
                self.set_model(key.clone(), r.checkpoint_sha256.clone());
            }
        }
        Ok(())
    }

    pub fn spec_of(&mut self, sha: &str) -> CResult<(String, String)> {
        if !self.specs.contains_key(sha) {
            let spec = self.ledger.spec(sha)?.unwrap_or_default();
            self.specs.insert(sha.to_string(), spec);
        }
        Ok(self.specs[sha].clone())
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
                    .keys()
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
