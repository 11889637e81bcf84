//! What a worker's part must be before anything of it is written: a readable Parquet file in any
//! codec pandas, polars or pyarrow write by default, with rows, the table's columns and types (a
//! string or list column may come as its large or view form and is stored in ours), no null where
//! the table has none, and rows that belong to the unit sending them.

use crate::scan::scan_batch;
use crate::tables::{
    baselines_batch, decode_parquet, derived_batch, encode_batches, models_batch, patterns_batch,
    searches_batch, training_batch,
};
use crate::work::transfer_batch;
use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use iscp_proto::Table;
use std::collections::HashSet;

/// Who sends a part: the unit, the units it read (an evaluation's searches), and for a prepare
/// unit the model hash its completion names.
#[derive(Debug, Clone, Copy)]
pub struct PartOwner<'a> {
    pub unit_id: &'a str,
    pub reads: &'a [String],
    pub model_sha: Option<&'a str>,
}

/// The schema of a table.
pub fn table_schema(table: Table) -> SchemaRef {
    let batch = match table {
        Table::Searches => searches_batch(&[]),
        Table::Patterns => patterns_batch(&[]),
        Table::Models => models_batch(&[]),
        Table::Training => training_batch("", "", &[]),
        Table::Baselines => baselines_batch(&[]),
        Table::Derived => derived_batch(&[]),
        Table::Scan => scan_batch(&[]),
        Table::Transfer => transfer_batch(&[]),
        Table::Detection => crate::tables::detection_batch(&[]),
        Table::Audit => crate::tables::audit_batch(&[]),
        Table::Failures => crate::tables::failures_batch(&[]),
    };
    batch.schema()
}

/// Checks a part for `table` sent by `owner` and returns the bytes to store: the part itself when
/// its schema is the table's, else its rows re-encoded in the table's schema. `Err` says why it
/// is refused; nothing has been written either way.
pub fn check_part(table: Table, bytes: Vec<u8>, owner: &PartOwner) -> Result<Vec<u8>, String> {
    let schema = table_schema(table);
    let batches = decode_parquet(&bytes)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Err("no rows".into());
    }
    let mut same = true;
    let mut out = Vec::with_capacity(batches.len());
    for b in &batches {
        let (batch, unchanged) = conform(b, &schema)?;
        check_rows(table, &batch, owner)?;
        same &= unchanged;
        out.push(batch);
    }
    if same {
        return Ok(bytes);
    }
    encode_batches(&schema, &out)
}

/// The batch in the table's schema (`true` when nothing had to change), or why it cannot be.
fn conform(b: &RecordBatch, schema: &SchemaRef) -> Result<(RecordBatch, bool), String> {
    let have = b.schema();
    let wanted: HashSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if let Some(extra) = have
        .fields()
        .iter()
        .find(|f| !wanted.contains(f.name().as_str()))
    {
        return Err(format!("column `{}` is not in the table", extra.name()));
    }
    let mut unchanged = have.fields().len() == schema.fields().len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let Some(col) = b.column_by_name(field.name()) else {
            return Err(format!("column `{}` is missing", field.name()));
        };
        if !equivalent(col.data_type(), field.data_type()) {
            return Err(format!(
                "column `{}` is {}, the table's is {}",
                field.name(),
                col.data_type(),
                field.data_type()
            ));
        }
        if !field.is_nullable() && col.null_count() > 0 {
            return Err(format!("column `{}` has nulls", field.name()));
        }
        unchanged &= have.field(i).name() == field.name() && col.data_type() == field.data_type();
        let col = if col.data_type() == field.data_type() {
            col.clone()
        } else {
            arrow_cast::cast(col, field.data_type())
                .map_err(|e| format!("column `{}`: {e}", field.name()))?
        };
        columns.push(col);
    }
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
    Ok((batch, unchanged))
}

/// Types that hold the same values: strings in any offset width or as views, lists likewise
/// (with any name or nullability for their items), otherwise exactly equal.
fn equivalent(have: &DataType, want: &DataType) -> bool {
    use DataType::*;
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let item = |t: &DataType| match t {
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) => Some(f.data_type().clone()),
        _ => None,
    };
    if string(want) {
        return string(have);
    }
    if let (Some(h), Some(w)) = (item(have), item(want)) {
        return equivalent(&h, &w);
    }
    match (have, want) {
        (Timestamp(hu, _), Timestamp(wu, _)) => hu == wu,
        _ => have == want,
    }
}

/// Rows name their own unit (and, in `patterns` and `transfer`, only searches the unit read); a
/// model row names the model the completion names; masks are finite.
fn check_rows(table: Table, b: &RecordBatch, owner: &PartOwner) -> Result<(), String> {
    let strings = |name: &str| b.column_by_name(name).map(|c| c.as_string::<i32>().clone());
    if let Some(ids) = strings("unit_id") {
        if let Some(other) = ids.iter().flatten().find(|id| *id != owner.unit_id) {
            return Err(format!(
                "a row names unit `{other}`, not the unit completing (`{}`)",
                owner.unit_id
            ));
        }
    }
    if matches!(table, Table::Patterns | Table::Transfer) {
        let read: HashSet<&str> = owner.reads.iter().map(String::as_str).collect();
        if let Some(ids) = strings("search_id") {
            if let Some(other) = ids.iter().flatten().find(|id| !read.contains(id)) {
                return Err(format!(
                    "a row names search `{other}`, which this unit did not read"
                ));
            }
        }
    }
    if table == Table::Models {
        if let (Some(shas), Some(sha)) = (strings("checkpoint_sha256"), owner.model_sha) {
            if let Some(other) = shas.iter().flatten().find(|s| *s != sha) {
                return Err(format!(
                    "a model row names checkpoint {other}, the completion names {sha}"
                ));
            }
        }
    }
    if table == Table::Searches {
        let masks = b
            .column_by_name("mask")
            .expect("conformed")
            .as_list::<i32>();
        let values = masks.values().as_primitive::<Float32Type>();
        if values.values().iter().any(|v| !v.is_finite()) {
            return Err("a mask holds a value that is not finite".into());
        }
    }
    Ok(())
}
