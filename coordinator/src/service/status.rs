//! Sweep status: units by kind and state, and the failed units with their reasons.

use super::core::{Core, Key, UnitState, CANCELLED, DONE, FAILED, LEASED, PENDING};
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

impl Core {
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
            let mut kinds: BTreeMap<String, KindCount> = BTreeMap::new();
            let mut failures = Vec::new();
            for id in &s.order {
                let r = &self.units[&super::core::UnitKey::new(name.as_str(), id.as_str())].row;
                let k = kinds
                    .entry(r.kind.to_string())
                    .or_insert_with(|| KindCount {
                        kind: r.kind.to_string(),
                        ..Default::default()
                    });
                match r.state {
                    PENDING => k.pending += 1,
                    LEASED => k.leased += 1,
                    DONE => k.done += 1,
                    FAILED => {
                        k.failed += 1;
                        failures.push((
                            r.id.clone(),
                            r.kind.to_string(),
                            (r.failures + r.expiries) as u64,
                            r.error.clone(),
                        ));
                    }
                    CANCELLED => k.cancelled += 1,
                }
            }
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
