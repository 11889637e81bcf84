//! IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw, read with clear errors for bad files.

use super::Dataset;
use crate::{EngineError, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// One IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Largest decompressed IDX file read (Fashion-MNIST's training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 4 << 30;

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                EngineError::bad_file(path, format!("gzip stream is corrupt or truncated: {e}"))
            })?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(EngineError::bad_file(
                path,
                format!("decompresses to more than {MAX_IDX_BYTES} bytes (a gzip bomb?)"),
            ));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads an IDX file of unsigned bytes with `expect_dims` dimensions (3 for images, 1 for labels).
pub fn read_idx(path: &Path, expect_dims: usize) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 4 {
        return Err(EngineError::bad_file(
            path,
            "truncated: shorter than the 4-byte IDX magic number",
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] as usize != expect_dims {
        return Err(EngineError::bad_file(
            path,
            format!(
                "wrong magic number 0x{:02x}{:02x}{:02x}{:02x}: expected 0x000008{:02x} (unsigned bytes, {} dimensions)",
                bytes[0], bytes[1], bytes[2], bytes[3], expect_dims, expect_dims
            ),
        ));
    }
    let header = 4 + 4 * expect_dims;
    if bytes.len() < header {
        return Err(EngineError::bad_file(
            path,
            "truncated inside the IDX header",
        ));
    }
    let dims: Vec<usize> = (0..expect_dims)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let got = bytes.len() - header;
    match expected {
        Some(n) if n == got => Ok(IdxArray {
            dims,
            data: bytes[header..].to_vec(),
        }),
        Some(n) if got < n => Err(EngineError::bad_file(
            path,
            format!("truncated: header {dims:?} promises {n} bytes of data, the file has {got}"),
        )),
        Some(n) => Err(EngineError::bad_file(
            path,
            format!(
                "{} bytes of trailing data after the {n} the header {dims:?} promises",
                got - n
            ),
        )),
        None => Err(EngineError::bad_file(
            path,
            format!("dimensions {dims:?} overflow"),
        )),
    }
}

/// Reads an images file and a labels file into a dataset.
pub fn load_idx_pair(
    images_path: &Path,
    labels_path: &Path,
    class_names: Option<Vec<String>>,
) -> Result<Dataset> {
    let im = read_idx(images_path, 3)?;
    let lb = read_idx(labels_path, 1)?;
    if im.dims[0] != lb.dims[0] {
        return Err(EngineError::bad_file(
            labels_path,
            format!(
                "{} labels for {} images in {}",
                lb.dims[0],
                im.dims[0],
                images_path.display()
            ),
        ));
    }
    let (n, h, w) = (im.dims[0] as i64, im.dims[1] as i64, im.dims[2] as i64);
    let max_label = lb.data.iter().copied().max().unwrap_or(0) as usize;
    let names = class_names.unwrap_or_else(|| Dataset::numbered_classes(max_label + 1));
    let images = Tensor::from_slice(&im.data)
        .view([n, 1, h, w])
        .to_kind(Kind::Float)
        / 255.0;
    let labels = Tensor::from_slice(&lb.data).to_kind(Kind::Int64);
    Dataset::new(images, labels, names)
        .map_err(|e| EngineError::bad_file(labels_path, e.to_string()))
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for candidate in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(candidate);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(EngineError::bad_file(
        dir.join(stem),
        "not found (neither raw nor .gz)",
    ))
}

/// Loads the standard MNIST-layout folder: `train-images-idx3-ubyte[.gz]`, `t10k-…` and their labels.
pub fn load_idx_dir(dir: &Path, class_names: Option<Vec<String>>) -> Result<super::DataSplits> {
    let train = load_idx_pair(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
        class_names.clone(),
    )?;
    let test = load_idx_pair(
        &find(dir, "t10k-images-idx3-ubyte")?,
        &find(dir, "t10k-labels-idx1-ubyte")?,
        Some(train.class_names.clone()),
    )?;
    Ok(super::DataSplits { train, test })
}
