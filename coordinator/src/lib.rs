//! The coordinator: the control plane of iscp. The ledger (SQLite), the scheduler (readiness,
//! leases, fencing, retries), the gRPC service and the artifact store, in `service`. What a sweep
//! is and what its units compute live in the `iscp-sweep` crate, which the workers share.

pub mod service;
