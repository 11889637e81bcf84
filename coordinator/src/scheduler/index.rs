//! The scheduler's indexes, kept up to date at every state change (`transition`) so that no
//! lease, event or status walks a sweep: per unit, how many of its dependencies are open, done or
//! failed; per sweep, its ready units (by plan position, and grouped by model and kind), its
//! counts per kind and state, and its failed units. Bulk changes (submit, cancel, retry, restart)
//! rebuild a sweep's index in one pass.

use super::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a dependency's state means to the units waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DepClass {
    Open,
    Done,
    Bad,
}

pub(super) fn class(s: UnitState) -> DepClass {
    match s {
        DONE => DepClass::Done,
        FAILED | CANCELLED => DepClass::Bad,
        _ => DepClass::Open,
    }
}

fn slot(s: UnitState) -> usize {
    match s {
        PENDING => 0,
        LEASED => 1,
        DONE => 2,
        FAILED => 3,
        CANCELLED => 4,
    }
}

/// A unit's dependencies (`deps`, not its model) by what their states mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct DepCounts {
    pub open: u32,
    pub done: u32,
    pub bad: u32,
}

impl DepCounts {
    pub(super) fn add(&mut self, c: DepClass, by: i64) {
        let f = match c {
            DepClass::Open => &mut self.open,
            DepClass::Done => &mut self.done,
            DepClass::Bad => &mut self.bad,
        };
        *f = (*f as i64 + by).max(0) as u32;
    }
}

/// One sweep's index.
#[derive(Debug, Default)]
pub(super) struct SweepIndex {
    /// Pending units that can run now, by plan position.
    pub ready: BTreeSet<usize>,
    /// The same units by model unit, then kind: a lease's companions, a held model's units.
    pub groups: HashMap<String, BTreeMap<UnitKind, BTreeSet<usize>>>,
    /// Units per kind: pending, leased, done, failed, cancelled.
    pub counts: BTreeMap<UnitKind, [u64; 5]>,
    /// Their estimated work by the same states (progress and its ETA weigh units by it).
    pub work: [u64; 5],
    /// Failed units by plan position (status lists them with their reasons).
    pub failed: BTreeSet<usize>,
    /// By plan position: the units that wait on this one, once per time it is among their
    /// `deps` (`true`), or once as their model only (`false`).
    pub dependents: Vec<Vec<(usize, bool)>>,
}

impl SweepIndex {
    pub(super) fn count(&mut self, kind: UnitKind, s: UnitState, by: i64, work: u64) {
        let c = &mut self.counts.entry(kind).or_default()[slot(s)];
        *c = (*c as i64 + by).max(0) as u64;
        let w = &mut self.work[slot(s)];
        *w = if by < 0 {
            w.saturating_sub(work)
        } else {
            *w + work
        };
    }

    /// (all work, work of settled units: done, failed or cancelled).
    pub fn work_totals(&self) -> (u64, u64) {
        let w = &self.work;
        (w.iter().sum(), w[2] + w[3] + w[4])
    }

    pub(super) fn insert_ready(&mut self, seq: usize, model: &str, kind: UnitKind) {
        self.ready.insert(seq);
        self.groups
            .entry(model.to_string())
            .or_default()
            .entry(kind)
            .or_default()
            .insert(seq);
    }

    pub(super) fn remove_ready(&mut self, seq: usize, model: &str, kind: UnitKind) {
        if !self.ready.remove(&seq) {
            return;
        }
        if let Some(by_kind) = self.groups.get_mut(model) {
            if let Some(set) = by_kind.get_mut(&kind) {
                set.remove(&seq);
                if set.is_empty() {
                    by_kind.remove(&kind);
                }
            }
            if by_kind.is_empty() {
                self.groups.remove(model);
            }
        }
    }

    /// (total, done, failed or cancelled, leased).
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        let mut t = (0, 0, 0, 0);
        for c in self.counts.values() {
            t.0 += c.iter().sum::<u64>();
            t.1 += c[2];
            t.2 += c[3] + c[4];
            t.3 += c[1];
        }
        t
    }

    /// Units not yet settled (pending or leased).
    pub fn unsettled(&self) -> u64 {
        self.counts.values().map(|c| c[0] + c[1]).sum()
    }
}

impl Scheduler {
    /// Whether `key` is a unit of its sweep's current plan (units of an earlier spec that the
    /// current one dropped stay in the ledger, out of the plan).
    pub(super) fn planned(&self, key: &Key) -> Option<usize> {
        let m = self.units.get(key)?;
        let s = self.sweeps.get(key.sweep.as_str())?;
        (s.order.get(m.seq).map(|id| id.as_str()) == Some(key.unit.as_str())).then_some(m.seq)
    }

    /// Rebuilds one sweep's index from its units' states: positions, dependents, dependency
    /// counts, counts per kind and state, the ready and failed units.
    pub(super) fn rebuild_index(&mut self, sweep: &str) {
        let Some(s) = self.sweeps.get_mut(sweep) else {
            return;
        };
        s.ix = SweepIndex {
            dependents: vec![Vec::new(); s.order.len()],
            ..SweepIndex::default()
        };
        let keys: Vec<Key> = s
            .order
            .iter()
            .map(|id| UnitKey::new(sweep, id.as_str()))
            .collect();
        let seq_of: HashMap<&str, usize> = s
            .order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut dependents = vec![Vec::new(); keys.len()];
        let mut facts = Vec::with_capacity(keys.len());
        for (seq, key) in keys.iter().enumerate() {
            let m = &self.units[key];
            let mut counts = DepCounts::default();
            for d in &m.row.deps {
                // A dependency the coordinator does not know counts as failed.
                let state = self
                    .units
                    .get(&UnitKey::new(sweep, d.as_str()))
                    .map(|u| u.row.state)
                    .unwrap_or(FAILED);
                counts.add(class(state), 1);
                if let Some(&ds) = seq_of.get(d.as_str()) {
                    dependents[ds].push((seq, true));
                }
            }
            let model_in_deps = m.row.deps.contains(&m.row.prepare_id);
            if !m.row.prepare_id.is_empty() && !model_in_deps {
                if let Some(&ms) = seq_of.get(m.row.prepare_id.as_str()) {
                    dependents[ms].push((seq, false));
                }
            }
            facts.push((counts, model_in_deps, m.row.kind, m.row.state, m.row.work));
        }
        drop(seq_of);
        let s = self.sweeps.get_mut(sweep).expect("exists");
        s.ix.dependents = dependents;
        for (seq, (key, (counts, model_in_deps, kind, state, work))) in
            keys.iter().zip(facts).enumerate()
        {
            s.ix.count(kind, state, 1, work);
            if state == FAILED {
                s.ix.failed.insert(seq);
            }
            let m = self.units.get_mut(key).expect("exists");
            m.seq = seq;
            m.deps_in = counts;
            m.model_in_deps = model_in_deps;
        }
        for key in &keys {
            self.refresh(key);
        }
    }
}
