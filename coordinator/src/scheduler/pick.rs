//! Which ready units a lease takes: a unit of a model the worker holds, else the next sweep's
//! first ready unit in turn; then companions of the same sweep, model and kind.

use super::*;

impl Scheduler {
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
                .get(m.row.prepare_id.as_str())
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
