//! A training checkpoint in one file: the model's artifact and what resumes its optimiser exactly
//! (SGD's momentum buffers, the loss scaler's scale and counters), so that a training resumed from
//! it, on any worker, continues as if it had never stopped.

use crate::model::{artifact_bytes, is_artifact, model_from_artifact, write_synced, Model};
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Tensor};

const MAGIC: &[u8; 8] = b"ISCPTRN1";

/// The loss scaler's state (mixed precision).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalerState {
    pub scale: f64,
    pub good_steps: usize,
    pub skipped: usize,
}

/// What training carries across steps besides the weights.
#[derive(Debug, Default)]
pub struct OptimState {
    /// SGD's momentum buffers by parameter name.
    pub momentum: Vec<(String, Tensor)>,
    pub scaler: Option<ScalerState>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    scaler: Option<ScalerState>,
    buffers: usize,
}

fn section(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// `MAGIC | u64 len | model artifact | u64 len | JSON header | u64 len | tensors`, written to
/// `path` via a synced temporary file.
pub fn save_train_state(model: &Model, optim: &OptimState, path: &Path) -> Result<()> {
    let header = Header {
        scaler: optim.scaler.clone(),
        buffers: optim.momentum.len(),
    };
    let mut tensors = Vec::new();
    if !optim.momentum.is_empty() {
        let cpu: Vec<(String, Tensor)> = optim
            .momentum
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.f_to_device(Device::Cpu)?)))
            .collect::<Result<_>>()?;
        Tensor::save_multi_to_stream(&cpu, &mut tensors)?;
    }
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    section(&mut out, &artifact_bytes(model)?);
    section(
        &mut out,
        &serde_json::to_vec(&header).map_err(|e| EngineError::Invalid(e.to_string()))?,
    );
    section(&mut out, &tensors);
    write_synced(path, &out)
}

/// Reads a checkpoint written by `save_train_state`, or a plain model artifact (a checkpoint of
/// an older version, without optimiser state: `None`).
pub fn load_train_state(path: &Path, device: Device) -> Result<(Model, Option<OptimState>)> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    if is_artifact(&bytes) {
        return Ok((model_from_artifact(&bytes, device, path)?, None));
    }
    if !bytes.starts_with(MAGIC) {
        return Err(EngineError::bad_file(
            path,
            "not an iscp training checkpoint (bad magic)",
        ));
    }
    let mut rest = &bytes[8..];
    let mut next = || -> Result<&[u8]> {
        if rest.len() < 8 {
            return Err(EngineError::bad_file(path, "truncated training checkpoint"));
        }
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
        if rest.len() - 8 < len {
            return Err(EngineError::bad_file(path, "truncated training checkpoint"));
        }
        let (s, r) = rest[8..].split_at(len);
        rest = r;
        Ok(s)
    };
    let model = model_from_artifact(next()?, device, path)?;
    let header: Header = serde_json::from_slice(next()?)
        .map_err(|e| EngineError::bad_file(path, format!("bad header: {e}")))?;
    let tensors = next()?;
    let momentum = if header.buffers == 0 {
        vec![]
    } else {
        Tensor::load_multi_from_stream(std::io::Cursor::new(tensors))
            .map_err(|e| EngineError::bad_file(path, format!("bad optimiser state: {e}")))?
    };
    if momentum.len() != header.buffers {
        return Err(EngineError::bad_file(path, "optimiser state is incomplete"));
    }
    Ok((
        model,
        Some(OptimState {
            momentum,
            scaler: header.scaler,
        }),
    ))
}
