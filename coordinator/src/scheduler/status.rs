//! Sweep status: units by kind and state, and the failed units with their reasons.

use super::{Key, Scheduler, UnitState};
use std::collections::BTreeMap;

/// Counts of one kind of unit in a sweep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindCount {
    pub kind: String,
    pub pending: u64,
    pub leased: u64,
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepStatus {
    pub sweep: String,
    pub kinds: Vec<KindCount>,
    /// (unit id, kind, failed attempts, last error) of failed units.
    pub failures: Vec<(String, String, u64, String)>,
    pub finished: bool,
    pub results: String,
}

impl Scheduler {
    /// The state of one unit, if the coordinator has it.
    pub fn unit_state(&self, key: &Key) -> Option<UnitState> {
        self.units.get(key).map(|m| m.row.state)
    }

    pub fn status(&self, only: &str) -> Vec<SweepStatus> {
        let mut out = Vec::new();
        for (name, s) in &self.sweeps {
            if !only.is_empty() && only != name {
                continue;
            }
            // From the sweep's index: nothing here walks the sweep's units.
            let kinds: BTreeMap<String, KindCount> =
                s.ix.counts
                    .iter()
                    .map(|(kind, c)| {
                        let k = KindCount {
                            kind: kind.to_string(),
                            pending: c[0],
                            leased: c[1],
                            done: c[2],
                            failed: c[3],
                            cancelled: c[4],
                        };
                        (k.kind.clone(), k)
                    })
                    .collect();
            let failures =
                s.ix.failed
                    .iter()
                    .map(|&seq| {
                        let r = &self.units[&Key::new(name.as_str(), s.order[seq].as_str())].row;
                        (
                            r.id.clone(),
                            r.kind.to_string(),
                            (r.failures + r.expiries) as u64,
                            r.error.clone(),
                        )
                    })
                    .collect();
            out.push(SweepStatus {
                sweep: name.clone(),
                kinds: kinds.into_values().collect(),
                failures,
                finished: s.finalized,
                results: self.results_root(name).display().to_string(),
            });
        }
        out
    }
}
