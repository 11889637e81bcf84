//! One-file model artifacts (metadata + weights) and their sha256, the content address they travel by.

use super::{Model, ModelMeta};
use crate::{EngineError, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use tch::Device;

const MAGIC: &[u8; 8] = b"ISCPMDL1";

/// sha256 of a file's bytes, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// `MAGIC | u64 LE json length | json metadata | weights`: the artifact's bytes.
pub fn artifact_bytes(model: &Model) -> Result<Vec<u8>> {
    let vs = model.var_store().ok_or_else(|| {
        EngineError::Invalid("only built-in models are saved as artifacts".into())
    })?;
    let meta = serde_json::to_vec(&model.meta).map_err(|e| EngineError::Invalid(e.to_string()))?;
    let mut weights = Vec::new();
    vs.save_to_stream(&mut weights)?;
    let mut bytes = Vec::with_capacity(16 + meta.len() + weights.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&meta);
    bytes.extend_from_slice(&weights);
    Ok(bytes)
}

/// Writes `bytes` to `path` via a synced temporary file.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        // A full disk stops the write midway: no half-written file stays behind.
        let _ = std::fs::remove_file(&tmp);
        EngineError::io(path, e)
    })
}

/// Writes the model's artifact (`artifact_bytes`) to `path` (via a synced temp file) and returns
/// its sha256.
pub fn save_artifact(model: &Model, path: &Path) -> Result<String> {
    let bytes = artifact_bytes(model)?;
    write_synced(path, &bytes)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Whether bytes begin as a model artifact does.
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Reads an artifact written by `save_artifact` onto `device`, frozen and in eval mode.
pub fn load_artifact(path: &Path, device: Device) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    model_from_artifact(&bytes, device, path)
}

/// A model from an artifact's bytes (`path` names them in errors).
pub fn model_from_artifact(bytes: &[u8], device: Device, path: &Path) -> Result<Model> {
    if bytes.len() < 16 || !is_artifact(bytes) {
        return Err(EngineError::bad_file(
            path,
            "not an iscp model artifact (bad magic)",
        ));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    if bytes.len() < 16 + len {
        return Err(EngineError::bad_file(path, "truncated model artifact"));
    }
    let meta: ModelMeta = serde_json::from_slice(&bytes[16..16 + len])
        .map_err(|e| EngineError::bad_file(path, format!("bad metadata: {e}")))?;
    let mut model = Model::new_builtin(meta, device)?;
    let vs = model.var_store_mut().expect("built-in");
    vs.load_from_stream(std::io::Cursor::new(&bytes[16 + len..]))
        .map_err(|e| EngineError::bad_file(path, format!("bad weights: {e}")))?;
    model.freeze();
    Ok(model)
}
