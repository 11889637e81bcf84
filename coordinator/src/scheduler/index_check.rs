//! A check for tests: a sweep's index kept through any sequence of calls equals one rebuilt from
//! the units' states.

use super::index::DepCounts;
use super::*;
use std::collections::{BTreeMap, BTreeSet};

impl Scheduler {
    /// Checks every sweep's index against one rebuilt from the units' states (for tests): the
    /// counts, failed and ready units (leaving out units in backoff, whose moment may pass
    /// between the two), the groups against the ready units, and each unit's dependency counts.
    #[doc(hidden)]
    pub fn check_index(&mut self) -> Result<(), String> {
        let names: Vec<String> = self.sweeps.keys().cloned().collect();
        for name in names {
            let snapshot = |core: &Scheduler| {
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
