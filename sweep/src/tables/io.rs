//! Writing and reading part files: each part is written to a temporary name, synced, then renamed,
//! so a reader never sees half a part. In a local run a part is named after the unit it holds.

use crate::{Result, SweepError};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

/// `<table_dir>/part-<name>.parquet`.
pub fn part_path(table_dir: &Path, name: &str) -> PathBuf {
    table_dir.join(format!("part-{name}.parquet"))
}

/// Writes `batch` as the part `name` of the table in `table_dir`, atomically and durably.
pub fn write_part(table_dir: &Path, name: &str, batch: &RecordBatch) -> Result<PathBuf> {
    std::fs::create_dir_all(table_dir).map_err(|e| SweepError::io(table_dir, e))?;
    let path = part_path(table_dir, name);
    let tmp = table_dir.join(format!(".part-{name}.parquet.tmp"));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let write = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let file = File::create(&tmp)?;
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props))?;
        w.write(batch)?;
        let file = w.into_inner()?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        File::open(table_dir)?.sync_all()?;
        Ok(())
    };
    write().map_err(|e| {
        // Nothing half-written stays behind (a full disk stops a write midway).
        let _ = std::fs::remove_file(&tmp);
        SweepError::table(&path, e)
    })?;
    Ok(path)
}

/// Writes an already encoded Parquet file as the part `name` of a table, atomically and durably
/// (a worker's result arriving over the wire).
pub fn write_part_bytes(table_dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = stage_part_bytes(table_dir, name, bytes)?.publish()?;
    sync_dir(table_dir)?;
    Ok(path)
}

/// A file written and synced under a hidden temporary name beside its place, not yet in it: the
/// slow half of writing it, done before taking the scheduler's lock. Dropped unpublished, its
/// temporary file is removed.
pub(crate) struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    published: bool,
}

impl Staged {
    /// Writes and syncs `bytes` at `tmp`, bound for `dest` (on an error the file is removed).
    pub(crate) fn write(tmp: PathBuf, dest: PathBuf, bytes: &[u8]) -> std::io::Result<Staged> {
        use std::io::Write;
        let staged = Staged {
            tmp,
            dest,
            published: false,
        };
        let mut file = File::create(&staged.tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Renames it to its place (the folder is not synced: see `sync_dir`); returns that place.
    pub(crate) fn publish(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| SweepError::io(&self.dest, e))?;
        self.published = true;
        Ok(self.dest.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A part written and synced under a hidden temporary name, not yet a part of its table: the
/// slow half of writing a part, done before taking the scheduler's lock. Dropped unpublished,
/// its file is removed.
pub struct StagedPart(Staged);

impl StagedPart {
    /// Renames it to `part-<name>.parquet` (its directory is not synced: see `sync_dir`).
    pub fn publish(self) -> Result<PathBuf> {
        self.0.publish()
    }
}

/// Writes and syncs `bytes` under a temporary name unique to this call in `table_dir`.
pub fn stage_part_bytes(table_dir: &Path, name: &str, bytes: &[u8]) -> Result<StagedPart> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(table_dir).map_err(|e| SweepError::io(table_dir, e))?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = table_dir.join(format!(
        ".part-{name}.parquet.{}-{n}.tmp",
        std::process::id()
    ));
    let staged = Staged::write(tmp.clone(), part_path(table_dir, name), bytes)
        .map_err(|e| SweepError::io(&tmp, e))?;
    Ok(StagedPart(staged))
}

/// Syncs a directory, making the renames in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SweepError::io(dir, e))
}

/// Encodes a batch as a whole Parquet file in memory (a worker's result for the wire).
pub fn encode_parquet(batch: &RecordBatch) -> std::result::Result<Vec<u8>, String> {
    encode_batches(&batch.schema(), std::slice::from_ref(batch))
}

/// Encodes batches of one schema as one Parquet file in memory, Snappy-compressed.
pub fn encode_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> std::result::Result<Vec<u8>, String> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut w =
        ArrowWriter::try_new(&mut out, schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    for batch in batches {
        w.write(batch).map_err(|e| e.to_string())?;
    }
    w.close().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Reads every batch of an in-memory Parquet file.
pub fn decode_parquet(bytes: &[u8]) -> std::result::Result<Vec<RecordBatch>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The part names present in `table_dir` (`part-<name>.parquet` → `name`); stray temp files are removed.
pub fn done_units(table_dir: &Path) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    let Ok(entries) = std::fs::read_dir(table_dir) else {
        return Ok(out);
    };
    for entry in entries {
        let entry = entry.map_err(|e| SweepError::io(table_dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(stem) = name
            .strip_prefix("part-")
            .and_then(|n| n.strip_suffix(".parquet"))
        {
            out.insert(stem.to_string());
        }
    }
    Ok(out)
}

/// All record batches of one part file.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(|e| SweepError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| SweepError::table(path, e))?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| SweepError::table(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_staged_part_is_hidden_until_published_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("searches");
        let staged = stage_part_bytes(&table, "u1", b"PAR1").unwrap();
        assert!(
            done_units(&table).unwrap().is_empty(),
            "{:?}",
            names(&table)
        );
        drop(staged);
        assert!(
            names(&table).is_empty(),
            "an unpublished part leaves nothing"
        );
        let path = stage_part_bytes(&table, "u1", b"PAR1")
            .unwrap()
            .publish()
            .unwrap();
        sync_dir(&table).unwrap();
        assert_eq!(names(&table), vec!["part-u1.parquet"]);
        assert_eq!(std::fs::read(path).unwrap(), b"PAR1");
    }
}
