//! The coordinator library: specs, the unit graph, Parquet result tables, pictures, what each unit
//! computes (`work`), and the coordinator service (ledger, leases, gRPC).

pub mod cost;
pub mod error;
pub mod images;
pub mod progress;
pub mod scan;
pub mod service;
pub mod spec;
pub mod tables;
pub mod units;
pub mod work;

pub use error::{CoordError, Result};
