//! The `failures` table's upgrade: parts written before protocol version 2 have no `reason`
//! column, and Parquet readers (polars among them) refuse a folder whose parts disagree on their
//! columns. Such parts are rewritten once, with the reason `internal` (unknown then).

use super::io::{done_units, part_path, read_batches, write_part};
use crate::Result;
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use std::path::Path;
use std::sync::Arc;

/// Adds a `reason` column (after `error`) to every part of `dir` that lacks one; returns how
/// many parts were rewritten.
pub fn upgrade_failure_parts(dir: &Path) -> Result<usize> {
    let mut upgraded = 0;
    for name in done_units(dir)? {
        let path = part_path(dir, &name);
        let batches = read_batches(&path)?;
        if batches.is_empty() || batches[0].schema().column_with_name("reason").is_some() {
            continue;
        }
        let mut out = Vec::new();
        for b in &batches {
            let at = b
                .schema()
                .index_of("error")
                .map_or(b.num_columns(), |i| i + 1);
            let mut fields: Vec<Field> =
                b.schema().fields().iter().map(|f| (**f).clone()).collect();
            let mut columns: Vec<ArrayRef> = b.columns().to_vec();
            fields.insert(at, Field::new("reason", DataType::Utf8, false));
            let reason = StringArray::from_iter_values((0..b.num_rows()).map(|_| "internal"));
            columns.insert(at, Arc::new(reason));
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
                .map_err(|e| crate::SweepError::table(&path, e))?;
            out.push(batch);
        }
        // Each failures part holds one attempt's row: one batch.
        let [whole] = <[RecordBatch; 1]>::try_from(out).map_err(|v| {
            crate::SweepError::table(&path, format!("{} batches in a failures part", v.len()))
        })?;
        write_part(dir, &name, &whole)?;
        upgraded += 1;
    }
    Ok(upgraded)
}
