//! The scheduler: a state machine over units and their leases, in memory and mirrored to the
//! ledger (SQLite) before any answer goes out. Readiness follows dependencies (a setting's model
//! before its searches, searches before their evaluation); completions and failures are fenced
//! by the lease's attempt number. A unit's state changes in one place (`transition`), which keeps
//! the leased map and the indexes (`index`) with it. The scheduler never reads a clock: calls
//! whose outcome depends on time take `now` (`clock::Now`), so tests advance time instead of
//! sleeping.

mod checkpoints;
mod clock;
mod complete;
mod config;
mod control;
mod derived;
mod error;
mod event;
mod expand;
mod index;
mod index_check;
mod lease;
mod ledger;
mod outcome;
mod parts;
mod pick;
mod readiness;
mod reconcile;
mod state;
pub mod status;
mod submit;
mod transition;
mod units;
mod uploads;

pub use clock::Now;
pub use config::SchedulerConfig;
pub use error::{SResult, SchedulerError};
pub use event::Event;
pub use expand::{expand, noop_units, Expanded};
pub use iscp_proto::v1::{EventKind, UnitKind};
pub use iscp_proto::{Table, UnitKey};
pub use lease::Beat;
pub use ledger::LedgerError;
pub use parts::{check_parts, CheckedParts, PartsOf, StagedParts};
pub use state::UnitState;
pub use submit::{PartsOnDisk, SpecText};
pub use units::{LeaseClaim, Leased, NewUnit};
pub use uploads::Purpose;

use index::{DepCounts, SweepIndex};
use iscp_sweep::tables;
use ledger::{Checkpoint, Ledger, UnitRow};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

const PENDING: UnitState = UnitState::Pending;
const LEASED: UnitState = UnitState::Leased;
const DONE: UnitState = UnitState::Done;
const FAILED: UnitState = UnitState::Failed;
const CANCELLED: UnitState = UnitState::Cancelled;

/// Every unit is named by its sweep and its id.
type Key = UnitKey;

/// The slot a leased unit runs on: its device, and what it works on in words (decoded when
/// someone watches: at the lease, or at its first progress after a watch began).
#[derive(Debug, Default, Clone)]
pub struct LeaseSlot {
    pub device: String,
    pub label: Option<iscp_proto::v1::UnitLabel>,
    /// Whether `label` was decoded (units with no words have none).
    pub decoded: bool,
}

struct UnitMem {
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
    pub fn new(row: UnitRow) -> Self {
        UnitMem {
            row,
            expires: None,
            not_before: None,
            progress: (0, 0),
            seq: usize::MAX,
            deps_in: DepCounts::default(),
            model_in_deps: false,
        }
    }
}

struct SweepMem {
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

struct WorkerMem {
    pub name: String,
    pub last_seen: Instant,
}

pub struct Scheduler {
    cfg: SchedulerConfig,
    ledger: Ledger,
    sweeps: BTreeMap<String, SweepMem>,
    /// Boxed: the map's slots stay small (a million units need two million slots).
    units: HashMap<Key, Box<UnitMem>>,
    /// The leased units, with the slot each runs on (what progress events say of it).
    leased: HashMap<Key, LeaseSlot>,
    models: HashMap<Key, String>,
    checkpoints: HashMap<Key, Checkpoint>,
    /// Artifact hashes of finished derive-data parts (computed when first needed).
    derived: HashMap<Key, String>,
    specs: HashMap<String, (String, String)>,
    workers: HashMap<String, WorkerMem>,
    events: tokio::sync::broadcast::Sender<Event>,
    /// Pending units in backoff, by the time they may run again.
    delayed: BTreeSet<(Instant, Key)>,
    /// Pending units found doomed (a dependency failed for good), to fail.
    doomed: Vec<Key>,
    /// The prepare units that made each model (by hash): a worker holding it prefers their units.
    by_sha: HashMap<String, Vec<Key>>,
    /// The sweep the last lease without a held model came from (leases go round the sweeps).
    last_served: Option<String>,
}

impl Scheduler {
    /// Opens the ledger in the state directory and reconciles it with the part files.
    pub fn open(
        cfg: SchedulerConfig,
        events: tokio::sync::broadcast::Sender<Event>,
        now: Now,
    ) -> SResult<Scheduler> {
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| SchedulerError::io(&cfg.state_dir, e))?;
        let ledger = Ledger::open(&cfg.state_dir.join("ledger.sqlite"))?;
        let mut core = Scheduler {
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
        for row in core.ledger.units()? {
            let key = UnitKey::new(row.sweep.as_str(), row.id.as_str());
            if let Some(s) = core.sweeps.get_mut(&row.sweep) {
                s.order.push(row.id.clone());
            }
            core.units.insert(key, Box::new(UnitMem::new(row)));
        }
        // A lease taken before a restart gets a full TTL for its worker to come back.
        core.restore_leases(now);
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

    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// The ledger's changes so far: a call that changed it waits for its commit to be on disk.
    pub fn ledger_changes(&self) -> u64 {
        self.ledger.total_changes()
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
    fn set_model(&mut self, key: Key, sha: String) {
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

    pub fn register(&mut self, worker_id: &str, name: &str, now: Now) {
        self.workers.insert(
            worker_id.to_string(),
            WorkerMem {
                name: name.to_string(),
                last_seen: now.at,
            },
        );
    }

    pub fn knows_worker(&self, worker_id: &str) -> bool {
        self.workers.contains_key(worker_id)
    }

    /// Learns the model hash from a prepare unit's `models` part (its parts: (table, path)) and
    /// keeps it in the ledger: only for parts adopted from disk, and ledgers from before the hash
    /// travelled with the completion.
    fn model_from_part(&mut self, key: &Key, parts: &[(String, String)]) -> SResult<()> {
        if let Some((_, p)) = parts.iter().find(|(t, _)| t == Table::Models.name()) {
            if let Some(r) = tables::read_model_rows(Path::new(p))?.first() {
                self.ledger
                    .put_model(&key.sweep, &key.unit, &r.checkpoint_sha256)?;
                self.set_model(key.clone(), r.checkpoint_sha256.clone());
            }
        }
        Ok(())
    }

    /// The spec `sha` as submitted: (the file it came from, its text), read from the ledger once;
    /// NotFound for a spec never submitted (FetchSpec).
    pub fn spec_of(&mut self, sha: &str) -> SResult<(String, String)> {
        Ok(self.spec_entry(sha)?.clone())
    }

    fn spec_entry(&mut self, sha: &str) -> SResult<&(String, String)> {
        if !self.specs.contains_key(sha) {
            let Some(spec) = self.ledger.spec(sha)? else {
                return Err(SchedulerError::NotFound(format!(
                    "spec {}",
                    sha.escape_debug()
                )));
            };
            self.specs.insert(sha.to_string(), spec);
        }
        Ok(&self.specs[sha])
    }

    /// Where the artifact `sha` is: where it was recorded or, when that is gone (the results
    /// folder was moved), the same sweep, folder and file under the results folder now.
    pub fn artifact_path(&self, sha: &str) -> SResult<Option<String>> {
        Ok(self.ledger.artifact(sha)?.map(|recorded| {
            let here = reconcile::moved(&self.cfg.results_dir, &recorded);
            match Path::new(&recorded).exists() {
                false if Path::new(&here).exists() => here,
                _ => recorded,
            }
        }))
    }

    pub fn put_artifact(&self, sha: &str, path: &str, bytes: u64) -> SResult<()> {
        Ok(self.ledger.put_artifact(sha, path, bytes)?)
    }

    /// (id, name, units leased, ms since last seen) of every registered worker.
    pub fn workers(&self, now: Now) -> Vec<(String, String, u64, u64)> {
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
                    now.at.saturating_duration_since(w.last_seen).as_millis() as u64,
                )
            })
            .collect()
    }
}
