//! The parts a finishing unit reads (its lease carries them), by table and unit id, decoded on
//! demand: pictures, the scan and transfers read them here instead of from a results folder.

use crate::tables::{self, PatternRow, SearchRow};
use crate::{CoordError, Result};
use arrow_array::RecordBatch;
use std::collections::HashMap;

/// Parquet parts by (table, unit id).
#[derive(Debug, Default)]
pub struct Inputs {
    parts: HashMap<(String, String), Vec<u8>>,
}

impl Inputs {
    pub fn new(parts: impl IntoIterator<Item = (String, String, Vec<u8>)>) -> Self {
        Inputs {
            parts: parts
                .into_iter()
                .map(|(table, unit, bytes)| ((table, unit), bytes))
                .collect(),
        }
    }

    fn bytes(&self, table: &str, unit: &str) -> Option<&[u8]> {
        self.parts
            .get(&(table.to_string(), unit.to_string()))
            .map(Vec::as_slice)
    }

    fn label(table: &str, unit: &str) -> String {
        format!("input {table}/{unit}")
    }

    /// The pattern rows of an evaluation; None when it came without a part (it failed).
    pub fn patterns(&self, unit: &str) -> Result<Option<Vec<PatternRow>>> {
        self.bytes("patterns", unit)
            .map(|b| tables::pattern_rows_from_bytes(b, &Self::label("patterns", unit)))
            .transpose()
    }

    /// The row of a search a pattern names: it must have come with the lease.
    pub fn search(&self, unit: &str) -> Result<SearchRow> {
        let b = self.bytes("searches", unit).ok_or_else(|| {
            CoordError::Missing(format!("search {unit}'s part did not come with the lease"))
        })?;
        tables::search_rows_from_bytes(b, &Self::label("searches", unit))?
            .into_iter()
            .next()
            .ok_or_else(|| CoordError::table(Self::label("searches", unit), "no rows"))
    }

    /// The batches of a unit's part of `table`; None when it came without one.
    pub fn batches(&self, table: &str, unit: &str) -> Result<Option<Vec<RecordBatch>>> {
        self.bytes(table, unit)
            .map(|b| {
                tables::decode_parquet(b)
                    .map_err(|e| CoordError::table(Self::label(table, unit), e))
            })
            .transpose()
    }
}
