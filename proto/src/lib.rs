//! The iscp wire protocol: generated messages, client and server, and the protocol version.

#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("iscp.v1");
}

pub mod ids;
pub mod table;
mod unit_kind;

pub use ids::{is_sha256, refuse_folder_name, Sha256, SweepName, UnitId, UnitKey};
pub use table::Table;
pub use v1::coordinator_client::CoordinatorClient;
pub use v1::coordinator_server::{Coordinator, CoordinatorServer};

/// Bumped whenever a message changes meaning; register and heartbeat refuse a mismatch.
pub const PROTOCOL_VERSION: u32 = 9;

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
