//! The `derived` table: one row per rebuilt training image of a D_R / D_NR set (its pixels, label,
//! starting image and how close its representation came to the original's).

use super::read::rows;
use crate::Result;
use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use std::path::Path;
use std::sync::Arc;

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

pub fn derived_batch(rows: &[DerivedRow]) -> RecordBatch {
    let s = |f: fn(&DerivedRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let i = |f: fn(&DerivedRow) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    let fl = |f: fn(&DerivedRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    let mut images = ListBuilder::new(Float32Builder::new());
    for r in rows {
        images.values().append_slice(&r.image);
        images.append(true);
    }
    RecordBatch::try_from_iter_with_nullable(vec![
        ("unit_id", s(|r| &r.unit_id), false),
        ("setting", s(|r| &r.setting), false),
        ("source_setting", s(|r| &r.source_setting), false),
        ("index", i(|r| r.index), false),
        ("label", i(|r| r.label), false),
        ("start_index", i(|r| r.start_index), false),
        ("distance_start", fl(|r| r.distance_start), false),
        ("distance_end", fl(|r| r.distance_end), false),
        ("image", Arc::new(images.finish()) as ArrayRef, false),
        ("channels", i(|r| r.channels), false),
        ("height", i(|r| r.height), false),
        ("width", i(|r| r.width), false),
    ])
    .expect("columns of equal length")
}

/// The rows of one `derived` part file.
pub fn read_derived_rows(path: &Path) -> Result<Vec<DerivedRow>> {
    rows(path, |c, i| {
        Ok(DerivedRow {
            unit_id: c.s("unit_id", i)?,
            setting: c.s("setting", i)?,
            source_setting: c.s("source_setting", i)?,
            index: c.i("index", i)?,
            label: c.i("label", i)?,
            start_index: c.i("start_index", i)?,
            distance_start: c.f("distance_start", i)?,
            distance_end: c.f("distance_end", i)?,
            image: c.floats("image", i)?,
            channels: c.i("channels", i)?,
            height: c.i("height", i)?,
            width: c.i("width", i)?,
        })
    })
}
