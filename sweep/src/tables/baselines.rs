//! The `baselines` table: UAP perturbations and Grad-CAM patches, with their predictive power.

use super::{table_row, Row};
use arrow_array::RecordBatch;

table_row! {
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
}

pub fn baselines_batch(rows: &[BaselineRow]) -> RecordBatch {
    Row::batch(rows)
}
