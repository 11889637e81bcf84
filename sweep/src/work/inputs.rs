//! The parts a finishing unit reads, by table and unit id, decoded on demand: given up front, or
//! fetched one at a time from where they are (the coordinator, with FetchPart) and kept, so that
//! pictures of a setting read its patterns and only the searches those patterns name.

use crate::tables::{self, ModelRow, PatternRow, SearchRow};
use crate::{Result, SweepError};
use arrow_array::RecordBatch;
use iscp_proto::Table;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Fetches the part of (table, unit id); Ok(None) when that unit has none (it failed).
pub type Fetch = Box<dyn Fn(&str, &str) -> Result<Option<Vec<u8>>>>;

/// A part's bytes by (table, unit id); None: that unit has none.
type Parts = HashMap<(String, String), Option<Rc<Vec<u8>>>>;

/// Parquet parts by (table, unit id).
#[derive(Default)]
pub struct Inputs {
    parts: RefCell<Parts>,
    fetch: Option<Fetch>,
}

impl Inputs {
    /// Parts given up front; any other part is absent.
    pub fn new(parts: impl IntoIterator<Item = (String, String, Vec<u8>)>) -> Self {
        Inputs {
            parts: RefCell::new(
                parts
                    .into_iter()
                    .map(|(table, unit, bytes)| ((table, unit), Some(Rc::new(bytes))))
                    .collect(),
            ),
            fetch: None,
        }
    }

    /// Parts fetched with `fetch` the first time they are read.
    pub fn fetched(fetch: Fetch) -> Self {
        Inputs {
            parts: RefCell::default(),
            fetch: Some(fetch),
        }
    }

    fn bytes(&self, table: Table, unit: &str) -> Result<Option<Rc<Vec<u8>>>> {
        let key = (table.name().to_string(), unit.to_string());
        if let Some(b) = self.parts.borrow().get(&key) {
            return Ok(b.clone());
        }
        let got = match &self.fetch {
            Some(f) => f(table.name(), unit)?.map(Rc::new),
            None => None,
        };
        self.parts.borrow_mut().insert(key, got.clone());
        Ok(got)
    }

    fn label(table: Table, unit: &str) -> String {
        format!("input {table}/{unit}")
    }

    /// The pattern rows of an evaluation; None when it has no part (it failed).
    pub fn patterns(&self, unit: &str) -> Result<Option<Vec<PatternRow>>> {
        self.bytes(Table::Patterns, unit)?
            .map(|b| tables::pattern_rows_from_bytes(&b, &Self::label(Table::Patterns, unit)))
            .transpose()
    }

    /// The row of a prepared model (its `models` part); None when it has none.
    pub fn model(&self, unit: &str) -> Result<Option<ModelRow>> {
        Ok(self
            .bytes(Table::Models, unit)?
            .map(|b| tables::model_rows_from_bytes(&b, &Self::label(Table::Models, unit)))
            .transpose()?
            .and_then(|rows| rows.into_iter().next()))
    }

    /// The row of a search a pattern names: it must exist.
    pub fn search(&self, unit: &str) -> Result<SearchRow> {
        let b = self.bytes(Table::Searches, unit)?.ok_or_else(|| {
            SweepError::Missing(format!("search {unit}, which a pattern names, has no part"))
        })?;
        tables::search_rows_from_bytes(&b, &Self::label(Table::Searches, unit))?
            .into_iter()
            .next()
            .ok_or_else(|| SweepError::table(Self::label(Table::Searches, unit), "no rows"))
    }

    /// The batches of a unit's part of `table`; None when it has none.
    pub fn batches(&self, table: Table, unit: &str) -> Result<Option<Vec<RecordBatch>>> {
        self.bytes(table, unit)?
            .map(|b| {
                tables::decode_parquet(&b)
                    .map_err(|e| SweepError::table(Self::label(table, unit), e))
            })
            .transpose()
    }

    /// How many parts were read (given or fetched).
    pub fn read(&self) -> usize {
        self.parts.borrow().values().filter(|b| b.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_part_is_fetched_once_and_an_absent_one_is_none() {
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let inputs = Inputs::fetched(Box::new(move |table, unit| {
            c.set(c.get() + 1);
            Ok((table == "baselines" && unit == "b").then(|| b"not parquet".to_vec()))
        }));
        assert!(inputs.patterns("e").unwrap().is_none());
        assert!(inputs.patterns("e").unwrap().is_none());
        assert!(inputs.search("s").is_err());
        assert!(
            inputs.batches(Table::Baselines, "b").is_err(),
            "garbage is an error, not a part"
        );
        assert_eq!(calls.get(), 3, "each (table, unit) asked once");
        assert_eq!(inputs.read(), 1);
    }
}
