//! The iscp wire protocol: generated messages, client and server, and the protocol version.

#[allow(clippy::all)]
pub mod v1 {
    tonic::include_proto!("iscp.v1");
}

pub use v1::coordinator_client::CoordinatorClient;
pub use v1::coordinator_server::{Coordinator, CoordinatorServer};

/// Bumped whenever a message changes meaning; register and heartbeat refuse a mismatch.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest message either side accepts (a unit's result parts, an evaluation's inputs).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Artifact chunk size on the wire.
pub const CHUNK_BYTES: usize = 1024 * 1024;
