//! What a sweep is and what its units compute, shared by the coordinator (which plans, checks and
//! stores) and the workers (which run the units): the spec (keys, checks, loading), unit kinds and
//! the plan, the Parquet tables, the unit bodies (`work`), pictures, the scan and cost estimates.
//! It depends on the engine and the wire's ids, never on the coordinator or the worker.

pub mod audit;
pub mod cost;
pub mod error;
pub mod images;
pub mod label;
pub mod part_check;
pub mod report;
pub mod scan;
pub mod spec;
pub mod tables;
pub mod throughputs;
pub mod units;
pub mod work;

pub use error::{Result, SweepError};
