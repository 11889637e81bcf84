//! The one place a unit's state changes, and with it its lease slot, its expiry and the indexes:
//! one unit at a time (`set_state`, incremental), many of a sweep at once (`set_states`, then the
//! sweep's index rebuilt), a unit leased (`begin_lease`), and every lease released.

use super::index::class;
use super::*;

impl Scheduler {
    /// Changes a unit's state and everything that follows from it: its lease slot and expiry
    /// (a unit leaving `leased` loses both; one entering it gets a slot), its sweep's counts, its
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
        if old == LEASED {
            m.expires = None;
            self.leased.remove(key);
        }
        if new == LEASED {
            self.leased.entry(key.clone()).or_default();
        }
        let (kind, model, work) = (m.row.kind, m.row.prepare_id.clone(), m.row.work);
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

    /// Applies `change` to every unit of a sweep (it returns the unit's new state, or None to
    /// leave it): lease slots follow, the changed units are written to the ledger in one
    /// transaction, the sweep's index is rebuilt, and the changed units are returned.
    pub(super) fn set_states(
        &mut self,
        sweep: &str,
        mut change: impl FnMut(&mut UnitMem) -> Option<UnitState>,
    ) -> SResult<Vec<Key>> {
        let Some(s) = self.sweeps.get(sweep) else {
            return Err(SchedulerError::NotFound(format!("sweep {sweep}")));
        };
        let keys: Vec<Key> = s
            .order
            .iter()
            .map(|id| UnitKey::new(sweep, id.as_str()))
            .collect();
        let mut changed = Vec::new();
        for key in keys {
            let m = self.units.get_mut(&key).expect("sweep units exist");
            let old = m.row.state;
            let Some(new) = change(m) else {
                continue;
            };
            m.row.state = new;
            if old == LEASED && new != LEASED {
                m.expires = None;
                self.leased.remove(&key);
            }
            if new == LEASED {
                self.leased.entry(key.clone()).or_default();
            }
            changed.push(key);
        }
        let rows: Vec<&UnitRow> = changed.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        self.rebuild_index(sweep);
        Ok(changed)
    }

    /// Leases a unit: `row` is its new lease (attempt, lease id, worker), until `expires`, on the
    /// worker's slot on `device`.
    pub(super) fn begin_lease(
        &mut self,
        key: &Key,
        row: UnitRow,
        expires: Option<Instant>,
        device: &str,
    ) {
        let m = self.units.get_mut(key).expect("leased units exist");
        m.row = row;
        m.progress = (0, 0);
        self.set_state(key, LEASED);
        let m = self.units.get_mut(key).expect("leased units exist");
        m.expires = expires;
        if let Some(slot) = self.leased.get_mut(key) {
            slot.device = device.to_string();
        }
    }

    /// The leases the ledger holds when the scheduler opens: each gets a full TTL from `now` for
    /// its worker to come back.
    pub(super) fn restore_leases(&mut self, now: Now) {
        let ttl = self.cfg.lease_ttl;
        for (key, m) in self.units.iter_mut() {
            if m.row.state == LEASED {
                m.expires = Some(now.at + ttl);
                self.leased.insert(key.clone(), LeaseSlot::default());
            }
        }
    }

    /// Puts every leased unit back in the queue without counting an attempt (the in-process
    /// runner, whose earlier worker died with the process).
    pub fn release_leases(&mut self) -> SResult<usize> {
        let keys: Vec<Key> = self.leased.keys().cloned().collect();
        for key in &keys {
            let m = self.units.get_mut(key).expect("leased units exist");
            m.row.lease_id.clear();
            self.set_state(key, PENDING);
        }
        let rows: Vec<&UnitRow> = keys.iter().map(|k| &self.units[k].row).collect();
        self.ledger.update_units(&rows)?;
        Ok(keys.len())
    }
}
