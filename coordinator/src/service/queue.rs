//! The scheduler's indexes, kept up to date at every state change so that no lease, event or
//! status walks a sweep: per unit, how many of its dependencies are open, done or failed; per
//! sweep, its ready units (by plan position, and grouped by model and kind), its counts per kind
//! and state, and its failed units. Bulk changes (submit, cancel, retry, restart) rebuild a
//! sweep's index in one pass.

use super::core::*;
use super::CResult;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// What a dependency's state means to the units waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepClass {
    Open,
    Done,
    Bad,
}

fn class(s: UnitState) -> DepClass {
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
    fn add(&mut self, c: DepClass, by: i64) {
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
    fn count(&mut self, kind: UnitKind, s: UnitState, by: i64, work: u64) {
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

    fn insert_ready(&mut self, seq: usize, model: &str, kind: UnitKind) {
        self.ready.insert(seq);
        self.groups
            .entry(model.to_string())
            .or_default()
            .entry(kind)
            .or_default()
            .insert(seq);
    }

    fn remove_ready(&mut self, seq: usize, model: &str, kind: UnitKind) {
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

impl Core {
    /// Whether `key` is a unit of its sweep's current plan (units of an earlier spec that the
    /// current one dropped stay in the ledger, out of the plan).
    fn planned(&self, key: &Key) -> Option<usize> {
        let m = self.units.get(key)?;
        let s = self.sweeps.get(key.sweep.as_str())?;
        (s.order.get(m.seq).map(|id| id.as_str()) == Some(key.unit.as_str())).then_some(m.seq)
    }

    /// Changes a unit's state and everything that follows from it: its sweep's counts, its
    /// place among the ready units, and the dependency counts (and readiness) of its dependents.
    pub(super) fn set_state(&mut self, key: &Key, new: UnitState) {
        let Some(m) = self.units.get_mut(key) else {
            return;
        };
        let old = m.row.state;
        if old == new {
            return;
        }
        m.row.state = new;
        let (kind, model, work) = (m.row.kind, m.row.model_unit.clone(), m.row.work);
        if let Some(seq) = self.planned(key) {
            let s = self.sweeps.get_mut(key.sweep.as_str()).expect("planned");
            s.ix.count(kind, old, -1, work);
            s.ix.count(kind, new, 1, work);
            if old == PENDING {
                s.ix.remove_ready(seq, &model, kind);
            }
            match (old, new) {
                (_, FAILED) => {
                    s.ix.failed.insert(seq);
                }
                (FAILED, _) => {
                    s.ix.failed.remove(&seq);
                }
                _ => {}
            }
        }
        let (was, is) = (class(old), class(new));
        if let (true, Some(seq)) = (was != is, self.planned(key)) {
            let s = &self.sweeps[key.sweep.as_str()];
            let waiting: Vec<(Key, bool)> = s.ix.dependents[seq]
                .iter()
                .map(|&(d, counted)| {
                    (
                        UnitKey::new(key.sweep.as_str(), s.order[d].as_str()),
                        counted,
                    )
                })
                .collect();
            for (d, counted) in waiting {
                if counted {
                    let dm = self.units.get_mut(&d).expect("planned units exist");
                    dm.deps_in.add(was, -1);
                    dm.deps_in.add(is, 1);
                }
                self.refresh(&d);
            }
        }
        if new == PENDING {
            self.refresh(key);
        }
    }

    /// Puts a pending unit where its readiness says: among the ready units, with the delayed
    /// (backoff), out of both (waiting), or on the list of units to fail (doomed).
    pub(super) fn refresh(&mut self, key: &Key) {
        let Some(seq) = self.planned(key) else {
            return;
        };
        let m = &self.units[key];
        if m.row.state != PENDING {
            return;
        }
        let (kind, model) = (m.row.kind, m.row.model_unit.clone());
        let later = m.not_before.filter(|t| *t > Instant::now());
        let readiness = self.readiness(key);
        let s = self.sweeps.get_mut(key.sweep.as_str()).expect("planned");
        match readiness {
            Readiness::Ready => match later {
                Some(t) => {
                    s.ix.remove_ready(seq, &model, kind);
                    self.delayed.insert((t, key.clone()));
                }
                None => s.ix.insert_ready(seq, &model, kind),
            },
            Readiness::Wait => s.ix.remove_ready(seq, &model, kind),
            Readiness::Doomed(_) => {
                s.ix.remove_ready(seq, &model, kind);
                self.doomed.push(key.clone());
            }
        }
    }

    /// Delayed units whose backoff has passed become ready.
    pub(super) fn promote_delayed(&mut self, now: Instant) {
        while let Some((t, _)) = self.delayed.first() {
            if *t > now {
                break;
            }
            let (_, key) = self.delayed.pop_first().expect("first");
            self.refresh(&key);
        }
    }

    /// Fails, without an attempt, every unit found doomed (a dependency failed for good), and
    /// those their failure dooms in turn.
    pub(super) fn settle_doomed(&mut self) -> CResult<()> {
        while let Some(key) = self.doomed.pop() {
            if self.units.get(&key).is_none_or(|m| m.row.state != PENDING) {
                continue;
            }
            if let Readiness::Doomed(why) = self.readiness(&key) {
                self.settle_failed(&key, why)?;
            }
        }
        Ok(())
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
            let model_in_deps = m.row.deps.contains(&m.row.model_unit);
            if !m.row.model_unit.is_empty() && !model_in_deps {
                if let Some(&ms) = seq_of.get(m.row.model_unit.as_str()) {
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

    /// Picks the unit a lease starts from: a ready unit of a model the worker holds (the
    /// earliest planned), else the earliest ready unit of the next sweep in turn (round robin,
    /// so that sweeps sharing a coordinator share its workers).
    pub(super) fn pick_lead(&mut self, held: &std::collections::HashSet<String>) -> Option<Key> {
        let mut best: Option<(usize, Key)> = None;
        for sha in held {
            for pk in self.by_sha.get(sha).into_iter().flatten() {
                let Some(s) = self.sweeps.get(pk.sweep.as_str()) else {
                    continue;
                };
                let Some(by_kind) = s.ix.groups.get(pk.unit.as_str()) else {
                    continue;
                };
                let first = by_kind.values().filter_map(|set| set.first()).min();
                if let Some(&seq) = first {
                    if best.as_ref().is_none_or(|(b, _)| seq < *b) {
                        best = Some((seq, UnitKey::new(pk.sweep.as_str(), s.order[seq].as_str())));
                    }
                }
            }
        }
        if let Some((_, key)) = best {
            return Some(key);
        }
        let after = self.last_served.clone().unwrap_or_default();
        let next = self
            .sweeps
            .range::<String, _>((
                std::ops::Bound::Excluded(&after),
                std::ops::Bound::Unbounded,
            ))
            .chain(self.sweeps.range::<String, _>(..=&after))
            .find(|(_, s)| !s.ix.ready.is_empty())
            .map(|(name, s)| {
                (
                    name.clone(),
                    s.order[*s.ix.ready.first().expect("non-empty")].clone(),
                )
            });
        let (name, id) = next?;
        self.last_served = Some(name.clone());
        Some(UnitKey::new(name.as_str(), id.as_str()))
    }

    /// Up to `more` ready units that may share a lease with `lead`: same sweep, model and kind,
    /// in plan order.
    pub(super) fn companions(&self, lead: &Key, more: usize) -> Vec<Key> {
        let m = &self.units[lead];
        let Some(s) = self.sweeps.get(lead.sweep.as_str()) else {
            return vec![];
        };
        let Some(set) =
            s.ix.groups
                .get(m.row.model_unit.as_str())
                .and_then(|g| g.get(&m.row.kind))
        else {
            return vec![];
        };
        set.iter()
            .filter(|&&seq| seq != m.seq)
            .take(more)
            .map(|&seq| UnitKey::new(lead.sweep.as_str(), s.order[seq].as_str()))
            .collect()
    }
}

impl Core {
    /// Checks every sweep's index against one rebuilt from the units' states (for tests): the
    /// counts, failed and ready units (leaving out units in backoff, whose moment may pass
    /// between the two), the groups against the ready units, and each unit's dependency counts.
    #[doc(hidden)]
    pub fn check_index(&mut self) -> Result<(), String> {
        let names: Vec<String> = self.sweeps.keys().cloned().collect();
        for name in names {
            let snapshot = |core: &Core| {
                let s = &core.sweeps[&name];
                let backoff = |seq: &usize| {
                    core.units[&UnitKey::new(name.as_str(), s.order[*seq].as_str())]
                        .not_before
                        .is_some()
                };
                let ready: BTreeSet<usize> =
                    s.ix.ready.iter().filter(|q| !backoff(q)).copied().collect();
                let grouped: BTreeSet<usize> =
                    s.ix.groups
                        .values()
                        .flat_map(|g| g.values().flatten())
                        .copied()
                        .collect();
                let deps: Vec<DepCounts> = s
                    .order
                    .iter()
                    .map(|id| core.units[&UnitKey::new(name.as_str(), id.as_str())].deps_in)
                    .collect();
                let counts: BTreeMap<UnitKind, [u64; 5]> =
                    s.ix.counts
                        .iter()
                        .filter(|(_, c)| c.iter().any(|&n| n > 0))
                        .map(|(k, c)| (*k, *c))
                        .collect();
                (
                    ready,
                    grouped == s.ix.ready,
                    (counts, s.ix.work),
                    s.ix.failed.clone(),
                    deps,
                )
            };
            let kept = snapshot(self);
            let doomed = self.doomed.len();
            self.rebuild_index(&name);
            self.doomed.truncate(doomed);
            let rebuilt = snapshot(self);
            if !kept.1 {
                return Err(format!("{name}: groups and ready units differ"));
            }
            if kept != rebuilt {
                return Err(format!(
                    "{name}: kept index {:?} != rebuilt {:?}",
                    (&kept.0, &kept.2, &kept.3),
                    (&rebuilt.0, &rebuilt.2, &rebuilt.3)
                ));
            }
        }
        Ok(())
    }
}
