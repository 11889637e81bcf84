//! The `baselines` table: UAP perturbations and Grad-CAM patches, with their predictive power.

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use std::sync::Arc;

/// One row of `baselines`.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRow {
    pub unit_id: String,
    pub setting: String,
    pub class: i64,
    pub class_name: String,
    /// `uap` or `gradcam`.
    pub method: String,
    /// UAP radius in pixel units (null for Grad-CAM).
    pub epsilon: Option<f64>,
    /// Grad-CAM's canvas (null for UAP).
    pub canvas_kind: Option<String>,
    pub canvas_rank: Option<i64>,
    pub canvas_index: Option<i64>,
    pub size: Option<f64>,
    pub k: Option<i64>,
    pub selection_loss: Option<f64>,
    pub is_best: bool,
    /// UAP: attack success rate; Grad-CAM: predictive power (null unless best).
    pub pw: Option<f64>,
    pub pw_heldout: Option<f64>,
    /// UAP: δ (C·H·W); Grad-CAM: the binary patch mask (H·W).
    pub pattern: Vec<f32>,
    pub channels: i64,
    pub height: i64,
    pub width: i64,
}

pub fn baselines_batch(rows: &[BaselineRow]) -> RecordBatch {
    let s = |f: fn(&BaselineRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let os = |f: fn(&BaselineRow) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let i = |f: fn(&BaselineRow) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    let oi = |f: fn(&BaselineRow) -> Option<i64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Int64Array>())
    };
    let of = |f: fn(&BaselineRow) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float64Array>())
    };
    let mut patterns = ListBuilder::new(Float32Builder::new());
    for r in rows {
        patterns.values().append_slice(&r.pattern);
        patterns.append(true);
    }
    RecordBatch::try_from_iter_with_nullable(vec![
        ("unit_id", s(|r| &r.unit_id), false),
        ("setting", s(|r| &r.setting), false),
        ("class", i(|r| r.class), false),
        ("class_name", s(|r| &r.class_name), false),
        ("method", s(|r| &r.method), false),
        ("epsilon", of(|r| r.epsilon), true),
        ("canvas_kind", os(|r| r.canvas_kind.as_deref()), true),
        ("canvas_rank", oi(|r| r.canvas_rank), true),
        ("canvas_index", oi(|r| r.canvas_index), true),
        ("size", of(|r| r.size), true),
        ("k", oi(|r| r.k), true),
        ("selection_loss", of(|r| r.selection_loss), true),
        (
            "is_best",
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.is_best))
                    .collect::<BooleanArray>(),
            ) as ArrayRef,
            false,
        ),
        ("pw", of(|r| r.pw), true),
        ("pw_heldout", of(|r| r.pw_heldout), true),
        ("pattern", Arc::new(patterns.finish()), false),
        ("channels", i(|r| r.channels), false),
        ("height", i(|r| r.height), false),
        ("width", i(|r| r.width), false),
    ])
    .expect("columns of equal length")
}
