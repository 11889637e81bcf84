//! The Parquet tables (`searches`, `patterns`, `models`, `training`, `baselines`, `derived`,
//! `failures`): their rows and schemas.

mod baselines;
mod derived;
mod detection;
mod failures;
mod io;
mod legacy_parts;
mod read;
mod summary_rows;
mod training;

pub use baselines::{baselines_batch, BaselineRow};
pub use derived::{derived_batch, read_derived_rows, DerivedRow};
pub use detection::{
    audit_batch, detection_batch, detection_rows, read_audit_part, read_audit_rows,
    read_detection_rows, AuditRow, DetectionRow, ISCP, NEURAL_CLEANSE,
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

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use std::sync::Arc;

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
    pub oom_halvings: i64,
    pub worker: String,
    pub device: String,
    pub attempt: i64,
}

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
    pub oom_halvings: i64,
    /// Seconds its evaluation unit took (the same on every row of the unit; 0 in older parts).
    pub evaluate_s: f64,
}

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
    /// BadNets trigger name.
    pub trigger: Option<String>,
    /// The trigger's box (top-left row and column, side in pixels), when known.
    pub trigger_row: Option<i64>,
    pub trigger_col: Option<i64>,
    pub trigger_size: Option<i64>,
    /// A trained BadNets model whose attack success rate is under 0.9: left out of the
    /// poisoned models when an audit scores detectors.
    pub attack_failed: Option<bool>,
    /// Adversarial settings: accuracy under PGD-20 on the first 1,000 test images.
    pub robust_accuracy: Option<f64>,
    pub poison_rate: Option<f64>,
    pub poisoned_images: Option<i64>,
    pub train_epochs: Option<i64>,
    pub training_s: f64,
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

fn s<T>(rows: &[T], f: impl Fn(&T) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
}
fn i<T>(rows: &[T], f: impl Fn(&T) -> i64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
}
fn oi<T>(rows: &[T], f: impl Fn(&T) -> Option<i64>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<Int64Array>())
}
fn fl<T>(rows: &[T], f: impl Fn(&T) -> f64) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
}
fn ofl<T>(rows: &[T], f: impl Fn(&T) -> Option<f64>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<Float64Array>())
}
fn b<T>(rows: &[T], f: impl Fn(&T) -> bool) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(f(r))).collect::<BooleanArray>())
}

fn batch(columns: Vec<(&str, ArrayRef, bool)>) -> RecordBatch {
    RecordBatch::try_from_iter_with_nullable(columns).expect("columns of equal length")
}

pub fn searches_batch(rows: &[SearchRow]) -> RecordBatch {
    let mut masks = ListBuilder::new(Float32Builder::new());
    let mut canvases = ListBuilder::new(Float32Builder::new());
    for r in rows {
        masks.values().append_slice(&r.mask);
        masks.append(true);
        if let Some(c) = &r.learned_canvas {
            canvases.values().append_slice(c);
        }
        canvases.append(r.learned_canvas.is_some());
    }
    batch(vec![
        ("unit_id", s(rows, |r| &r.unit_id), false),
        ("setting", s(rows, |r| &r.setting), false),
        ("class", i(rows, |r| r.class), false),
        ("class_name", s(rows, |r| &r.class_name), false),
        ("canvas_kind", s(rows, |r| &r.canvas_kind), false),
        ("canvas_rank", i(rows, |r| r.canvas_rank), false),
        ("canvas_index", i(rows, |r| r.canvas_index), false),
        ("alpha", fl(rows, |r| r.alpha), false),
        ("objective", s(rows, |r| &r.objective), false),
        ("variant", s(rows, |r| &r.variant), false),
        ("tv_beta", fl(rows, |r| r.tv_beta), false),
        ("learned_canvas", Arc::new(canvases.finish()), true),
        ("seed", i(rows, |r| r.seed), false),
        ("epochs", i(rows, |r| r.epochs), false),
        ("batch", i(rows, |r| r.batch), false),
        ("lr", fl(rows, |r| r.lr), false),
        ("subset_fraction", fl(rows, |r| r.subset_fraction), false),
        ("final_loss", fl(rows, |r| r.final_loss), false),
        ("mask", Arc::new(masks.finish()), false),
        ("height", i(rows, |r| r.height), false),
        ("width", i(rows, |r| r.width), false),
        ("duration_s", fl(rows, |r| r.duration_s), false),
        ("batched_with", i(rows, |r| r.batched_with), false),
        ("oom_halvings", i(rows, |r| r.oom_halvings), false),
        ("worker", s(rows, |r| &r.worker), false),
        ("device", s(rows, |r| &r.device), false),
        ("attempt", i(rows, |r| r.attempt), false),
    ])
}

pub fn patterns_batch(rows: &[PatternRow]) -> RecordBatch {
    batch(vec![
        ("unit_id", s(rows, |r| &r.unit_id), false),
        ("search_id", s(rows, |r| &r.search_id), false),
        ("setting", s(rows, |r| &r.setting), false),
        ("class", i(rows, |r| r.class), false),
        ("class_name", s(rows, |r| &r.class_name), false),
        ("alpha", fl(rows, |r| r.alpha), false),
        ("objective", s(rows, |r| &r.objective), false),
        ("variant", s(rows, |r| &r.variant), false),
        ("tv_beta", fl(rows, |r| r.tv_beta), false),
        ("canvas_kind", s(rows, |r| &r.canvas_kind), false),
        ("canvas_rank", i(rows, |r| r.canvas_rank), false),
        ("canvas_index", i(rows, |r| r.canvas_index), false),
        ("size", fl(rows, |r| r.size), false),
        ("k", i(rows, |r| r.k), false),
        ("selection_loss", fl(rows, |r| r.selection_loss), false),
        ("is_best", b(rows, |r| r.is_best), false),
        ("pw", ofl(rows, |r| r.pw), true),
        ("pw_heldout", ofl(rows, |r| r.pw_heldout), true),
        ("acc_with_pattern", ofl(rows, |r| r.acc_with_pattern), true),
        (
            "acc_with_pattern_heldout",
            ofl(rows, |r| r.acc_with_pattern_heldout),
            true,
        ),
        (
            "original_class_acc",
            ofl(rows, |r| r.original_class_acc),
            true,
        ),
        (
            "original_class_acc_heldout",
            ofl(rows, |r| r.original_class_acc_heldout),
            true,
        ),
        ("oom_halvings", i(rows, |r| r.oom_halvings), false),
        ("evaluate_s", fl(rows, |r| r.evaluate_s), false),
    ])
}

pub fn models_batch(rows: &[ModelRow]) -> RecordBatch {
    batch(vec![
        ("unit_id", s(rows, |r| &r.unit_id), false),
        ("setting", s(rows, |r| &r.setting), false),
        ("setting_kind", s(rows, |r| &r.setting_kind), false),
        ("architecture", s(rows, |r| &r.architecture), false),
        ("source", s(rows, |r| &r.source), false),
        (
            "checkpoint_sha256",
            s(rows, |r| &r.checkpoint_sha256),
            false,
        ),
        ("clean_accuracy", fl(rows, |r| r.clean_accuracy), false),
        (
            "attack_success_rate",
            ofl(rows, |r| r.attack_success_rate),
            true,
        ),
        ("poison_target", oi(rows, |r| r.poison_target), true),
        (
            "trigger",
            Arc::new(
                rows.iter()
                    .map(|r| r.trigger.as_deref())
                    .collect::<StringArray>(),
            ) as ArrayRef,
            true,
        ),
        ("trigger_row", oi(rows, |r| r.trigger_row), true),
        ("trigger_col", oi(rows, |r| r.trigger_col), true),
        ("trigger_size", oi(rows, |r| r.trigger_size), true),
        (
            "attack_failed",
            Arc::new(
                rows.iter()
                    .map(|r| r.attack_failed)
                    .collect::<BooleanArray>(),
            ) as ArrayRef,
            true,
        ),
        ("robust_accuracy", ofl(rows, |r| r.robust_accuracy), true),
        ("poison_rate", ofl(rows, |r| r.poison_rate), true),
        ("poisoned_images", oi(rows, |r| r.poisoned_images), true),
        ("train_epochs", oi(rows, |r| r.train_epochs), true),
        ("training_s", fl(rows, |r| r.training_s), false),
    ])
}

pub fn failures_batch(rows: &[FailureRow]) -> RecordBatch {
    let time: ArrayRef = Arc::new(
        TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.time_ms))
            .with_timezone("UTC"),
    );
    batch(vec![
        ("unit_id", s(rows, |r| &r.unit_id), false),
        ("unit_kind", s(rows, |r| &r.unit_kind), false),
        ("attempt", i(rows, |r| r.attempt), false),
        ("worker", s(rows, |r| &r.worker), false),
        ("error", s(rows, |r| &r.error), false),
        ("reason", s(rows, |r| &r.reason), false),
        ("retryable", b(rows, |r| r.retryable), false),
        ("time", time, false),
    ])
}
