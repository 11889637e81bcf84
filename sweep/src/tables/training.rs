//! The `training` table: one row per epoch of every trained model.

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use iscp_engine::train::EpochStats;
use std::sync::Arc;

/// Rows of one prepare unit's training, as a batch.
pub fn training_batch(unit_id: &str, setting: &str, epochs: &[EpochStats]) -> RecordBatch {
    let n = epochs.len();
    let fl = |f: fn(&EpochStats) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(epochs.iter().map(f)))
    };
    RecordBatch::try_from_iter_with_nullable(vec![
        (
            "unit_id",
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                unit_id, n,
            ))) as ArrayRef,
            false,
        ),
        (
            "setting",
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                setting, n,
            ))) as ArrayRef,
            false,
        ),
        (
            "epoch",
            Arc::new(Int64Array::from_iter_values(
                epochs.iter().map(|e| e.epoch as i64),
            )) as ArrayRef,
            false,
        ),
        ("loss", fl(|e| e.loss), false),
        ("train_accuracy", fl(|e| e.train_accuracy), false),
        (
            "test_accuracy",
            Arc::new(
                epochs
                    .iter()
                    .map(|e| e.test_accuracy)
                    .collect::<Float64Array>(),
            ) as ArrayRef,
            true,
        ),
        ("lr", fl(|e| e.lr), false),
        ("seconds", fl(|e| e.seconds), false),
    ])
    .expect("columns of equal length")
}
