//! The `training` table: one row per epoch of every trained model.

use super::{batch, col};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use iscp_engine::train::EpochStats;
use std::sync::Arc;

/// Rows of one prepare unit's training, as a batch.
pub fn training_batch(unit_id: &str, setting: &str, epochs: &[EpochStats]) -> RecordBatch {
    let repeated = |value: &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            value,
            epochs.len(),
        )))
    };
    batch(vec![
        ("unit_id", repeated(unit_id), false),
        ("setting", repeated(setting), false),
        (
            "epoch",
            Arc::new(Int64Array::from_iter_values(
                epochs.iter().map(|e| e.epoch as i64),
            )) as ArrayRef,
            false,
        ),
        ("loss", col(epochs, |e| &e.loss), false),
        ("train_accuracy", col(epochs, |e| &e.train_accuracy), false),
        ("test_accuracy", col(epochs, |e| &e.test_accuracy), true),
        ("lr", col(epochs, |e| &e.lr), false),
        ("seconds", col(epochs, |e| &e.seconds), false),
    ])
}
