//! The coordinator library: specs, the unit graph, Parquet result tables, pictures, the local
//! runner, and the coordinator service (ledger, leases, gRPC).

pub mod cost;
pub mod error;
pub mod images;
pub mod local;
pub mod progress;
pub mod scan;
pub mod service;
pub mod spec;
pub mod tables;
pub mod units;

pub use error::{CoordError, Result};
