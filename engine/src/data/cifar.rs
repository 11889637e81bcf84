//! CIFAR-10 binary batches (`data_batch_1.bin` … `test_batch.bin`: 1 label byte + 3072 pixel bytes a record).

use super::{DataSplits, Dataset, CIFAR10_CLASSES};
use crate::{EngineError, Result};
use std::path::Path;
use tch::{Kind, Tensor};

const RECORD: usize = 1 + 3 * 32 * 32;

/// Reads one binary batch file into (pixels, labels).
pub fn read_cifar_batch(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    if bytes.is_empty() {
        return Err(EngineError::bad_file(path, "empty file"));
    }
    if bytes.len() % RECORD != 0 {
        return Err(EngineError::bad_file(
            path,
            format!(
                "truncated or not a CIFAR-10 binary batch: {} bytes is not a whole number of {RECORD}-byte records ({} whole, {} bytes left)",
                bytes.len(),
                bytes.len() / RECORD,
                bytes.len() % RECORD
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] as usize >= CIFAR10_CLASSES.len() {
            return Err(EngineError::bad_file(
                path,
                format!("record {i} has label {} (CIFAR-10 labels are 0–9)", rec[0]),
            ));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

fn to_dataset(pixels: Vec<u8>, labels: Vec<u8>) -> Result<Dataset> {
    let n = labels.len() as i64;
    let images = Tensor::from_slice(&pixels)
        .view([n, 3, 32, 32])
        .to_kind(Kind::Float)
        / 255.0;
    let labels = Tensor::from_slice(&labels).to_kind(Kind::Int64);
    Dataset::new(
        images,
        labels,
        CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect(),
    )
}

/// Loads the `cifar-10-batches-bin` folder: every `data_batch_*.bin` present as training set, `test_batch.bin` as test set.
pub fn load_cifar10_dir(dir: &Path) -> Result<DataSplits> {
    let mut train_px = Vec::new();
    let mut train_lb = Vec::new();
    for i in 1..=5 {
        let p = dir.join(format!("data_batch_{i}.bin"));
        if p.exists() {
            let (px, lb) = read_cifar_batch(&p)?;
            train_px.extend(px);
            train_lb.extend(lb);
        }
    }
    if train_lb.is_empty() {
        return Err(EngineError::bad_file(
            dir.join("data_batch_1.bin"),
            "not found: no training batch in the folder",
        ));
    }
    let (test_px, test_lb) = read_cifar_batch(&dir.join("test_batch.bin"))?;
    Ok(DataSplits {
        train: to_dataset(train_px, train_lb)?,
        test: to_dataset(test_px, test_lb)?,
    })
}
