//! The coordinator: the control plane of iscp. The scheduler (`scheduler`: units, leases,
//! fencing, retries, the ledger in SQLite, the result parts it accounts for) and the server
//! (`server`: the gRPC calls translated to scheduler calls, artifact and watch streams, durable
//! answers). What a sweep is and what its units compute live in the `iscp-sweep` crate, which the
//! workers share.

pub mod scheduler;
pub mod server;
