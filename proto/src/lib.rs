//! The iscp wire protocol: generated messages, client and server, and the protocol version.

#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("iscp.v1");
}

pub mod ids;
pub mod table;

pub use ids::{is_sha256, refuse_folder_name, Sha256, SweepName, UnitId, UnitKey};
pub use table::Table;
pub use v1::coordinator_client::CoordinatorClient;
pub use v1::coordinator_server::{Coordinator, CoordinatorServer};

/// Bumped whenever a message changes meaning; register and heartbeat refuse a mismatch.
pub const PROTOCOL_VERSION: u32 = 6;

/// The most units one CompleteUnits call may carry.
pub const MAX_BATCH_UNITS: usize = 256;

/// Largest message either side accepts (a unit's result parts, a batch of completions).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Artifact chunk size on the wire.
pub const CHUNK_BYTES: usize = 1024 * 1024;

impl v1::FailureReason {
    /// Whether another attempt may succeed.
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            v1::FailureReason::InvalidInput | v1::FailureReason::VersionSkew
        )
    }

    /// The name written to the `failures` table's `reason` column.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified | Self::Internal => "internal",
            Self::InvalidInput => "invalid_input",
            Self::OutOfMemory => "out_of_memory",
            Self::MissingArtifact => "missing_artifact",
            Self::Transport => "transport",
            Self::LeaseExpired => "lease_expired",
            Self::VersionSkew => "version_skew",
        }
    }
}

impl From<&v1::UnitRef> for UnitKey {
    fn from(r: &v1::UnitRef) -> Self {
        UnitKey::new(r.sweep.as_str(), r.unit_id.as_str())
    }
}

impl From<&UnitKey> for v1::UnitRef {
    fn from(k: &UnitKey) -> Self {
        v1::UnitRef {
            sweep: k.sweep.to_string(),
            unit_id: k.unit.to_string(),
        }
    }
}

impl v1::UnitKind {
    /// Every kind a unit can have.
    pub const ALL: [v1::UnitKind; 11] = [
        v1::UnitKind::DeriveData,
        v1::UnitKind::PrepareModel,
        v1::UnitKind::Search,
        v1::UnitKind::Evaluate,
        v1::UnitKind::Baseline,
        v1::UnitKind::Pictures,
        v1::UnitKind::Scan,
        v1::UnitKind::Transfer,
        v1::UnitKind::Cleanse,
        v1::UnitKind::Audit,
        v1::UnitKind::Noop,
    ];

    /// The kind's name in the ledger, the tables and messages (`prepare-model`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::DeriveData => "derive-data",
            Self::PrepareModel => "prepare-model",
            Self::Search => "search",
            Self::Evaluate => "evaluate",
            Self::Baseline => "baseline",
            Self::Pictures => "pictures",
            Self::Scan => "scan",
            Self::Transfer => "transfer",
            Self::Cleanse => "cleanse",
            Self::Audit => "audit",
            Self::Noop => "noop",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The result tables a unit of this kind may write; the first one it must write.
    pub fn tables(self) -> &'static [crate::Table] {
        use crate::Table as T;
        match self {
            Self::DeriveData => &[T::Derived],
            Self::PrepareModel => &[T::Models, T::Training],
            Self::Search => &[T::Searches],
            Self::Evaluate => &[T::Patterns],
            Self::Baseline => &[T::Baselines],
            Self::Scan => &[T::Scan, T::Detection],
            Self::Transfer => &[T::Transfer],
            Self::Cleanse => &[T::Detection],
            Self::Audit => &[T::Audit],
            // Pictures are files (`OutputFile`), not table rows.
            Self::Pictures | Self::Noop | Self::Unspecified => &[],
        }
    }

    /// A unit that finishes a sweep from the parts of the units it depends on: ready once they
    /// are all settled and at least one of them succeeded.
    pub fn finishing(self) -> bool {
        matches!(
            self,
            Self::Pictures | Self::Scan | Self::Transfer | Self::Audit
        )
    }

    /// Long units go one per lease, so that idle workers can take the others.
    pub fn one_per_lease(self) -> bool {
        matches!(self, Self::PrepareModel | Self::DeriveData)
    }
}

impl std::fmt::Display for v1::UnitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl v1::EventKind {
    /// The event's name in messages and logs (`leased`, `handed-back`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Status => "status",
            Self::Submitted => "submitted",
            Self::Leased => "leased",
            Self::Progress => "progress",
            Self::Done => "done",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::HandedBack => "handed-back",
            Self::Cancelled => "cancelled",
            Self::Finished => "finished",
        }
    }
}
