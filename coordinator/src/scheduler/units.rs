//! What crosses the scheduler's edge about one unit: a unit submitted (`NewUnit`), a unit handed
//! out (`Leased`), and who claims to hold a lease (`LeaseClaim`).

use super::ledger::Checkpoint;
use iscp_proto::v1::UnitKind;

/// A unit handed to a worker.
pub struct Leased {
    pub sweep: String,
    pub unit_id: String,
    pub kind: UnitKind,
    pub lease_id: String,
    pub attempt: u64,
    pub spec_sha: String,
    /// The file the spec came from (its text: `Scheduler::spec_of`, fetched once per worker).
    pub spec_file: String,
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
        4096 + self.spec_file.len() + self.params.len() + artifacts
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
    pub prepare_id: String,
    pub deps: Vec<String>,
    /// Its estimated work (`iscp_sweep::cost::unit_work`).
    pub work: u64,
}
