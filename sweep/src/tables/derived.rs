//! The `derived` table: one row per rebuilt training image of a D_R / D_NR set (its pixels, label,
//! starting image and how close its representation came to the original's).

use super::read::read_rows;
use super::{table_row, Row};
use crate::Result;
use arrow_array::RecordBatch;
use std::path::Path;

table_row! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct DerivedRow {
        pub unit_id: String,
        /// The derived setting, and the setting whose model was inverted.
        pub setting: String,
        pub source_setting: String,
        /// Row of the training set this image replaces (it keeps that image's label).
        pub index: i64,
        pub label: i64,
        /// Training row the inversion started from.
        pub start_index: i64,
        /// ‖g(start) − g(x)‖₂ and ‖g(x_r) − g(x)‖₂.
        pub distance_start: f64,
        pub distance_end: f64,
        /// C·H·W pixels in [0,1].
        pub image: Vec<f32>,
        pub channels: i64,
        pub height: i64,
        pub width: i64,
    }
}

pub fn derived_batch(rows: &[DerivedRow]) -> RecordBatch {
    Row::batch(rows)
}

/// The rows of one `derived` part file.
pub fn read_derived_rows(path: &Path) -> Result<Vec<DerivedRow>> {
    read_rows(path)
}
