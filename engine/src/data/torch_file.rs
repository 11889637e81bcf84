//! Tensors from files Python's `torch.save` wrote, in the zip format (torch ≥ 1.6) and the legacy
//! one: how Ilyas et al. published D_R and D_NR (`CIFAR_ims`, `CIFAR_lab`).

use super::pickle::{load, TensorRef, Value};
use super::Dataset;
use crate::{EngineError, Result};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use tch::{Kind, Tensor};

fn kind_of(class: &str) -> Option<(Kind, usize)> {
    Some(match class {
        "FloatStorage" => (Kind::Float, 4),
        "DoubleStorage" => (Kind::Double, 8),
        "HalfStorage" => (Kind::Half, 2),
        "BFloat16Storage" => (Kind::BFloat16, 2),
        "LongStorage" => (Kind::Int64, 8),
        "IntStorage" => (Kind::Int, 4),
        "ShortStorage" => (Kind::Int16, 2),
        "CharStorage" => (Kind::Int8, 1),
        "ByteStorage" => (Kind::Uint8, 1),
        "BoolStorage" => (Kind::Bool, 1),
        _ => return None,
    })
}

fn build(path: &Path, t: &TensorRef, bytes: &[u8]) -> Result<Tensor> {
    let bad = |m: String| EngineError::bad_file(path, m);
    let (kind, elem) = kind_of(&t.storage.class)
        .ok_or_else(|| bad(format!("unsupported storage {}", t.storage.class)))?;
    let numel = t.storage.numel;
    if bytes.len() < numel as usize * elem {
        return Err(bad(format!(
            "storage {} holds {} bytes, {numel} elements need {}",
            t.storage.key,
            bytes.len(),
            numel as usize * elem
        )));
    }
    let storage = Tensor::f_from_data_size(&bytes[..numel as usize * elem], &[numel], kind)?;
    let reach: i64 = t
        .size
        .iter()
        .zip(&t.stride)
        .map(|(s, st)| (s - 1).max(0) * st)
        .sum::<i64>()
        + t.offset;
    if t.size.iter().all(|&s| s > 0) && reach >= numel {
        return Err(bad(format!(
            "tensor view reaches past its storage of {numel}"
        )));
    }
    Ok(storage
        .f_as_strided(t.size.as_slice(), t.stride.as_slice(), t.offset)?
        .contiguous())
}

fn as_tensor(path: &Path, v: Value) -> Result<TensorRef> {
    match v {
        Value::Tensor(t) => Ok(t),
        other => Err(EngineError::bad_file(
            path,
            format!("holds no single tensor but {:.80}", format!("{other:?}")),
        )),
    }
}

/// Reads the tensor a `torch.save(tensor, path)` wrote.
pub fn load_torch_tensor(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let bad = |m: String| EngineError::bad_file(path, m);
    if bytes.starts_with(b"PK\x03\x04") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
            .map_err(|e| bad(format!("zip: {e}")))?;
        let pkl = zip
            .file_names()
            .find(|n| n.ends_with("data.pkl"))
            .map(String::from)
            .ok_or_else(|| bad("no data.pkl: not a torch.save file".into()))?;
        let prefix = pkl.trim_end_matches("data.pkl").to_string();
        let mut read = |name: &str| -> Result<Vec<u8>> {
            let mut f = zip.by_name(name).map_err(|e| bad(format!("{name}: {e}")))?;
            let mut out = Vec::new();
            f.read_to_end(&mut out)
                .map_err(|e| EngineError::io(path, e))?;
            Ok(out)
        };
        let t = as_tensor(path, load(&read(&pkl)?, &mut 0)?)?;
        let data = read(&format!("{prefix}data/{}", t.storage.key))?;
        return build(path, &t, &data);
    }
    // Legacy: magic number, protocol version, system info, the object, its storage keys, then
    // each storage as an 8-byte element count and its raw little-endian data.
    let mut at = 0;
    let magic = load(&bytes, &mut at).map_err(|e| bad(format!("not a torch.save file ({e})")))?;
    if !matches!(magic, Value::Int(_)) {
        return Err(bad("not a torch.save file".into()));
    }
    load(&bytes, &mut at)?;
    load(&bytes, &mut at)?;
    let t = as_tensor(path, load(&bytes, &mut at)?)?;
    let Value::List(keys) = load(&bytes, &mut at)? else {
        return Err(bad("no storage key list".into()));
    };
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for k in keys {
        let Value::Str(k) = k else {
            return Err(bad("storage key is not a string".into()));
        };
        let head = bytes
            .get(at..at + 8)
            .ok_or_else(|| bad("truncated storage".into()))?;
        let n = i64::from_le_bytes(head.try_into().expect("8 bytes"));
        at += 8;
        let elem = if k == t.storage.key {
            kind_of(&t.storage.class).map_or(1, |(_, e)| e)
        } else {
            1
        };
        let len = (n.max(0) as usize) * elem;
        let data = bytes
            .get(at..at + len)
            .ok_or_else(|| bad("truncated storage".into()))?;
        storages.insert(k, data);
        at += len;
    }
    let data = storages
        .get(&t.storage.key)
        .ok_or_else(|| bad(format!("storage {} is missing", t.storage.key)))?;
    build(path, &t, data)
}

/// A dataset published as two `torch.save` files in `dir`: `CIFAR_ims` (N×3×H×W floats in [0,1])
/// and `CIFAR_lab` (N integer labels), as Ilyas et al. released D_R and D_NR.
pub fn load_tensor_dataset(dir: &Path, class_names: Vec<String>) -> Result<Dataset> {
    let images = load_torch_tensor(&dir.join("CIFAR_ims"))?;
    let labels = load_torch_tensor(&dir.join("CIFAR_lab"))?;
    if images.dim() != 4 {
        return Err(EngineError::bad_file(
            dir.join("CIFAR_ims"),
            format!("images of shape {:?}, expected N×C×H×W", images.size()),
        ));
    }
    let (lo, hi) = (
        images.min().double_value(&[]),
        images.max().double_value(&[]),
    );
    if lo < 0.0 || hi > 1.0 {
        return Err(EngineError::bad_file(
            dir.join("CIFAR_ims"),
            format!("pixels span {lo}..{hi}, expected [0, 1]"),
        ));
    }
    Dataset::new(images, labels.to_kind(Kind::Int64), class_names)
}
