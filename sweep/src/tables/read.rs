//! Reading rows back from part files (resumed runs, evaluations and pictures read what searches wrote).

use super::columns::{Cols, Row};
use super::{read_batches, ModelRow, PatternRow, SearchRow};
use crate::{Result, SweepError};
use std::path::Path;

pub(super) fn rows<T>(path: &Path, f: impl Fn(&Cols, usize) -> Result<T>) -> Result<Vec<T>> {
    rows_of(path, read_batches(path)?, f)
}

/// Rows of batches already read; `path` names them in errors.
pub(super) fn rows_of<T>(
    path: &Path,
    batches: Vec<arrow_array::RecordBatch>,
    f: impl Fn(&Cols, usize) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for batch in batches {
        let c = Cols::new(&batch, path);
        for i in 0..batch.num_rows() {
            out.push(f(&c, i)?);
        }
    }
    Ok(out)
}

/// The rows of the part file at `path`.
pub(super) fn read_rows<T: Row>(path: &Path) -> Result<Vec<T>> {
    rows(path, T::read)
}

/// The rows of an in-memory Parquet file; `label` names it in errors.
fn rows_from_bytes<T: Row>(bytes: &[u8], label: &str) -> Result<Vec<T>> {
    let batches = super::io::decode_parquet(bytes).map_err(|e| SweepError::table(label, e))?;
    rows_of(Path::new(label), batches, T::read)
}

pub fn read_search_rows(path: &Path) -> Result<Vec<SearchRow>> {
    read_rows(path)
}

/// Search rows of an in-memory Parquet file (an evaluation's inputs on a worker); `label` names it in errors.
pub fn search_rows_from_bytes(bytes: &[u8], label: &str) -> Result<Vec<SearchRow>> {
    rows_from_bytes(bytes, label)
}

pub fn read_pattern_rows(path: &Path) -> Result<Vec<PatternRow>> {
    read_rows(path)
}

/// Pattern rows of an in-memory Parquet file (a finishing unit's inputs); `label` names it in errors.
pub fn pattern_rows_from_bytes(bytes: &[u8], label: &str) -> Result<Vec<PatternRow>> {
    rows_from_bytes(bytes, label)
}

pub fn read_model_rows(path: &Path) -> Result<Vec<ModelRow>> {
    read_rows(path)
}

/// The model rows of a part's bytes; `label` names it in errors.
pub fn model_rows_from_bytes(bytes: &[u8], label: &str) -> Result<Vec<ModelRow>> {
    rows_from_bytes(bytes, label)
}
