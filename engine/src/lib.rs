//! The ISCP compute library: datasets, models, training, BadNets poisoning, pattern search and evaluation.
//!
//! Everything here is synchronous tch code without networking; the coordinator and workers call it
//! from dedicated compute threads. Inputs are pixels in [0,1], shaped N×C×H×W.

pub mod adam;
pub mod adversarial;
pub mod agreement;
pub mod amp;
pub mod anomaly;
pub mod attack;
pub mod badnets;
pub mod baselines;
pub mod canvas;
pub mod cleanse;
pub mod cuda;
pub mod data;
pub mod error;
pub mod finite;
pub mod grad;
pub mod lanes;
pub mod margin;
pub mod memory;
pub mod model;
pub mod pattern;
pub mod poisoner;
pub mod precision;
pub mod rng;
pub mod robust_data;
pub mod search;
pub mod sgd;
pub mod throughput;
pub mod train;
pub mod train_state;
pub mod uap_scan;

pub use error::{EngineError, Result};

/// Parses a device name: `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<tch::Device> {
    match name {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => Ok(tch::Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(tch::Device::Cuda)
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "unknown device `{other}` (use cpu, cuda or cuda:N)"
                ))
            }),
    }
}
