//! Readiness: whether a pending unit can run (from its dependencies' states, counted in O(1)),
//! where that puts it (ready, delayed by backoff, waiting, doomed), and the doomed settled.

use super::*;

/// Whether a pending unit can run.
pub(super) enum Readiness {
    Ready,
    Wait,
    Doomed(String),
}

impl Scheduler {
    /// Whether a pending unit can run, from its dependency counts and its model's state: O(1).
    pub(super) fn readiness(&self, key: &Key) -> Readiness {
        let m = &self.units[key];
        let u = &m.row;
        let c = m.deps_in;
        let n = u.deps.len() as u32;
        let state = |id: &str| {
            self.units
                .get(&UnitKey::new(u.sweep.as_str(), id))
                .map(|m| m.row.state)
                .unwrap_or(FAILED)
        };
        let no_model = || {
            Readiness::Doomed(format!(
                "its model (prepare-model {}) could not be prepared",
                u.prepare_id
            ))
        };
        match u.kind {
            UnitKind::Search
            | UnitKind::Baseline
            | UnitKind::Cleanse
            | UnitKind::MaxMargin
            | UnitKind::UapScan => match state(&u.prepare_id) {
                DONE => Readiness::Ready,
                FAILED | CANCELLED => no_model(),
                _ => Readiness::Wait,
            },
            // A derived setting's model waits for all of its shards, a shard for its source model.
            UnitKind::PrepareModel | UnitKind::DeriveData if n > 0 => {
                if c.done == n {
                    Readiness::Ready
                } else if c.bad > 0 {
                    Readiness::Doomed("a unit it depends on failed or was cancelled".into())
                } else {
                    Readiness::Wait
                }
            }
            UnitKind::Evaluate => {
                if c.open > 0 {
                    Readiness::Wait
                } else if c.done > 0 {
                    Readiness::Ready
                } else {
                    Readiness::Doomed("none of its searches succeeded".into())
                }
            }
            // Pictures, scan, transfer: once everything they read is settled, from what succeeded;
            // a transfer also needs the model it evaluates on.
            k if k.finishing() => {
                let model = (!u.prepare_id.is_empty()).then(|| state(&u.prepare_id));
                let model_done = model == Some(DONE);
                if c.open > 0 || (model.is_some_and(|s| !s.is_terminal()) && !m.model_in_deps) {
                    Readiness::Wait
                } else if model.is_some_and(|s| s != DONE) {
                    no_model()
                } else if c.done > (m.model_in_deps && model_done) as u32 {
                    Readiness::Ready
                } else {
                    Readiness::Doomed("none of the units it reads succeeded".into())
                }
            }
            _ => Readiness::Ready,
        }
    }

    /// Puts a pending unit where its readiness says: among the ready units, with the delayed
    /// (in backoff: `not_before` set, until `promote_delayed` passes its moment), out of both
    /// (waiting), or on the list of units to fail (doomed).
    pub(super) fn refresh(&mut self, key: &Key) {
        let Some(seq) = self.planned(key) else {
            return;
        };
        let m = &self.units[key];
        if m.row.state != PENDING {
            return;
        }
        let (kind, model) = (m.row.kind, m.row.prepare_id.clone());
        let later = m.not_before;
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

    /// Delayed units whose backoff has passed by `now` become ready. An entry whose unit has
    /// since been given another moment (or none) only refreshes it.
    pub(super) fn promote_delayed(&mut self, now: Now) {
        while let Some((t, _)) = self.delayed.first() {
            if *t > now.at {
                break;
            }
            let (t, key) = self.delayed.pop_first().expect("first");
            if let Some(m) = self.units.get_mut(&key) {
                if m.not_before == Some(t) {
                    m.not_before = None;
                }
            }
            self.refresh(&key);
        }
    }

    /// Fails, without an attempt, every unit found doomed (a dependency failed for good), and
    /// those their failure dooms in turn.
    pub(super) fn settle_doomed(&mut self) -> SResult<()> {
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
}
