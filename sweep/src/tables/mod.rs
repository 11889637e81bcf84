//! The Parquet tables (`searches`, `patterns`, `models`, `training`, `baselines`, `derived`,
//! `failures`): their rows and schemas.

mod baselines;
mod columns;
mod derived;
mod detection;
mod failures;
mod io;
mod legacy_parts;
mod read;
mod summary_rows;
mod training;

pub use baselines::{baselines_batch, BaselineRow};
pub(crate) use columns::{batch, col, read_or, table_row, Cols, Column, Row};
pub use derived::{derived_batch, read_derived_rows, DerivedRow};
pub use detection::{
    audit_batch, detection_batch, detection_rows, newest_audit_part, read_audit_part,
    read_audit_rows, read_detection_rows, AuditRow, DetectionRow, COMBINED, ISCP, MM_BD,
    NEURAL_CLEANSE, NEURAL_CLEANSE_ORIGINAL, UAP,
};
pub use failures::upgrade_failure_parts;
pub(crate) use io::Staged;
pub use io::{
    decode_parquet, done_units, encode_batches, encode_parquet, part_path, read_batches,
    stage_part_bytes, sync_dir, write_part, write_part_bytes, StagedPart,
};
pub use legacy_parts::remove_group_named_parts;
pub use read::{
    model_rows_from_bytes, pattern_rows_from_bytes, read_model_rows, read_pattern_rows,
    read_search_rows, search_rows_from_bytes,
};
pub use summary_rows::{
    read_failure_rows, read_models, read_patterns, read_scan_rows, read_table, read_uap_points,
    UapPoint,
};
pub use training::training_batch;

use arrow_array::{ArrayRef, RecordBatch, TimestampMillisecondArray};
use std::sync::Arc;

table_row! {
    /// One row of `searches`: a finished mask search.
    #[derive(Debug, Clone, PartialEq)]
    pub struct SearchRow {
        pub unit_id: String,
        pub setting: String,
        pub class: i64,
        pub class_name: String,
        pub canvas_kind: String,
        pub canvas_rank: i64,
        pub canvas_index: i64,
        pub alpha: f64,
        pub objective: String,
        pub variant: String,
        pub tv_beta: f64,
        /// The learned canvas (C·H·W values) of a learned-canvas search.
        pub learned_canvas: Option<Vec<f32>>,
        pub seed: i64,
        pub epochs: i64,
        pub batch: i64,
        pub lr: f64,
        pub subset_fraction: f64,
        pub final_loss: f64,
        pub mask: Vec<f32>,
        pub height: i64,
        pub width: i64,
        pub duration_s: f64,
        pub batched_with: i64,
        /// Times its batch was halved after the device ran out of memory.
        pub oom_halvings: i64 = 0,
        pub worker: String,
        pub device: String,
        pub attempt: i64,
    }
}

table_row! {
    /// One row of `patterns`: one canvas's search binarised at one size. Every row has its selection
    /// loss; the predictive-power columns are filled for the best canvas of each size (null otherwise).
    #[derive(Debug, Clone, PartialEq)]
    pub struct PatternRow {
        pub unit_id: String,
        pub search_id: String,
        pub setting: String,
        pub class: i64,
        pub class_name: String,
        pub alpha: f64,
        pub objective: String,
        pub variant: String,
        pub tv_beta: f64,
        pub canvas_kind: String,
        pub canvas_rank: i64,
        pub canvas_index: i64,
        pub size: f64,
        pub k: i64,
        pub selection_loss: f64,
        pub is_best: bool,
        pub pw: Option<f64>,
        pub pw_heldout: Option<f64>,
        pub acc_with_pattern: Option<f64>,
        pub acc_with_pattern_heldout: Option<f64>,
        pub original_class_acc: Option<f64>,
        pub original_class_acc_heldout: Option<f64>,
        /// Times the evaluation's forward batch was halved after the device ran out of memory.
        pub oom_halvings: i64 = 0,
        /// Seconds its evaluation unit took (the same on every row of the unit; 0 in older parts).
        pub evaluate_s: f64 = 0.0,
    }
}

table_row! {
    /// One row of `models`: a setting's prepared model.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ModelRow {
        pub unit_id: String,
        pub setting: String,
        pub setting_kind: String,
        pub architecture: String,
        pub source: String,
        pub checkpoint_sha256: String,
        pub clean_accuracy: f64,
        pub attack_success_rate: Option<f64>,
        pub poison_target: Option<i64>,
        /// BadNets trigger name (a patch's cells).
        pub trigger: Option<String>,
        /// BadNets trigger family: `patch`, `sparse`, `blend`, `sig` or `warp` (a trained model's;
        /// a given model's from its manifest's `family` column, when it has one).
        pub trigger_family: Option<String> = None,
        /// The trigger's box (top-left row and column, side in pixels), when known.
        pub trigger_row: Option<i64> = None,
        pub trigger_col: Option<i64> = None,
        pub trigger_size: Option<i64> = None,
        /// A trained BadNets model whose attack success rate is under 0.9: left out of the
        /// poisoned models when an audit scores detectors.
        pub attack_failed: Option<bool> = None,
        /// Adversarial settings: accuracy under PGD-20 on the first 1,000 test images.
        pub robust_accuracy: Option<f64>,
        pub poison_rate: Option<f64>,
        pub poisoned_images: Option<i64>,
        pub train_epochs: Option<i64>,
        pub training_s: f64,
        /// Measured on the device that prepared it, in float32: images a second through no-grad
        /// forward passes (evaluation's), through batched search steps (forward and backward to
        /// the input), and through this training (None for an imported model, and in older parts).
        pub forward_images_per_s: Option<f64> = None,
        pub search_images_per_s: Option<f64> = None,
        pub train_images_per_s: Option<f64> = None,
    }
}

/// One row of `failures`: a failed attempt of a unit.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRow {
    pub unit_id: String,
    pub unit_kind: String,
    pub attempt: i64,
    pub worker: String,
    pub error: String,
    /// Why it failed (`invalid_input`, `out_of_memory`, `missing_artifact`, `transport`,
    /// `internal`, `lease_expired`, `version_skew`): what decided `retryable`.
    pub reason: String,
    pub retryable: bool,
    pub time_ms: i64,
}

pub fn searches_batch(rows: &[SearchRow]) -> RecordBatch {
    Row::batch(rows)
}

pub fn patterns_batch(rows: &[PatternRow]) -> RecordBatch {
    Row::batch(rows)
}

pub fn models_batch(rows: &[ModelRow]) -> RecordBatch {
    Row::batch(rows)
}

/// `failures` is written by hand: its `time` column is a UTC timestamp of `time_ms`.
pub fn failures_batch(rows: &[FailureRow]) -> RecordBatch {
    let time: ArrayRef = Arc::new(
        TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.time_ms))
            .with_timezone("UTC"),
    );
    batch(vec![
        ("unit_id", col(rows, |r| &r.unit_id), false),
        ("unit_kind", col(rows, |r| &r.unit_kind), false),
        ("attempt", col(rows, |r| &r.attempt), false),
        ("worker", col(rows, |r| &r.worker), false),
        ("error", col(rows, |r| &r.error), false),
        ("reason", col(rows, |r| &r.reason), false),
        ("retryable", col(rows, |r| &r.retryable), false),
        ("time", time, false),
    ])
}
