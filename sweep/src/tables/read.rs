//! Reading rows back from part files (resumed runs, evaluations and pictures read what searches wrote).

use super::{read_batches, ModelRow, PatternRow, SearchRow};
use crate::{Result, SweepError};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use std::path::Path;

pub(super) struct Cols<'a> {
    batch: &'a RecordBatch,
    path: &'a Path,
}

impl<'a> Cols<'a> {
    pub(super) fn col(&self, name: &str) -> Result<&'a dyn Array> {
        self.batch
            .column_by_name(name)
            .map(|c| c.as_ref())
            .ok_or_else(|| SweepError::table(self.path, format!("no column `{name}`")))
    }
    pub(super) fn s(&self, name: &str, i: usize) -> Result<String> {
        Ok(self
            .col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.bad(name))?
            .value(i)
            .to_string())
    }
    pub(super) fn os(&self, name: &str, i: usize) -> Result<Option<String>> {
        let c = self
            .col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| self.bad(name))?;
        Ok(c.is_valid(i).then(|| c.value(i).to_string()))
    }
    pub(super) fn i(&self, name: &str, i: usize) -> Result<i64> {
        Ok(self
            .col(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| self.bad(name))?
            .value(i))
    }
    /// `i`, or `default` in a part written before the column existed.
    pub(super) fn i_or(&self, name: &str, i: usize, default: i64) -> Result<i64> {
        match self.batch.column_by_name(name) {
            None => Ok(default),
            Some(_) => self.i(name, i),
        }
    }
    /// `oi`, or None in a part written before the column existed.
    pub(super) fn oi_new(&self, name: &str, i: usize) -> Result<Option<i64>> {
        match self.batch.column_by_name(name) {
            None => Ok(None),
            Some(_) => self.oi(name, i),
        }
    }
    /// A nullable boolean, None in a part written before the column existed.
    pub(super) fn ob_new(&self, name: &str, i: usize) -> Result<Option<bool>> {
        let Some(c) = self.batch.column_by_name(name) else {
            return Ok(None);
        };
        let c = c.as_boolean_opt().ok_or_else(|| self.bad(name))?;
        Ok(c.is_valid(i).then(|| c.value(i)))
    }
    pub(super) fn oi(&self, name: &str, i: usize) -> Result<Option<i64>> {
        let c = self
            .col(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| self.bad(name))?;
        Ok(c.is_valid(i).then(|| c.value(i)))
    }
    pub(super) fn f(&self, name: &str, i: usize) -> Result<f64> {
        Ok(self
            .col(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| self.bad(name))?
            .value(i))
    }
    /// `f`, or `default` in a part written before the column existed.
    pub(super) fn f_or(&self, name: &str, i: usize, default: f64) -> Result<f64> {
        match self.batch.column_by_name(name) {
            None => Ok(default),
            Some(_) => self.f(name, i),
        }
    }
    pub(super) fn of(&self, name: &str, i: usize) -> Result<Option<f64>> {
        let c = self
            .col(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| self.bad(name))?;
        Ok(c.is_valid(i).then(|| c.value(i)))
    }
    pub(super) fn b(&self, name: &str, i: usize) -> Result<bool> {
        Ok(self
            .col(name)?
            .as_boolean_opt()
            .ok_or_else(|| self.bad(name))?
            .value(i))
    }
    pub(super) fn floats(&self, name: &str, i: usize) -> Result<Vec<f32>> {
        let list = self
            .col(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| self.bad(name))?;
        let v = list.value(i);
        Ok(v.as_primitive_opt::<Float32Type>()
            .ok_or_else(|| self.bad(name))?
            .values()
            .to_vec())
    }
    fn ofloats(&self, name: &str, i: usize) -> Result<Option<Vec<f32>>> {
        let list = self
            .col(name)?
            .as_list_opt::<i32>()
            .ok_or_else(|| self.bad(name))?;
        if list.is_null(i) {
            return Ok(None);
        }
        self.floats(name, i).map(Some)
    }
    fn bad(&self, name: &str) -> SweepError {
        SweepError::table(self.path, format!("column `{name}` has an unexpected type"))
    }
}

pub(super) fn rows<T>(path: &Path, f: impl Fn(&Cols, usize) -> Result<T>) -> Result<Vec<T>> {
    rows_of(path, read_batches(path)?, f)
}

/// Rows of batches already read; `path` names them in errors.
pub(super) fn rows_of<T>(
    path: &Path,
    batches: Vec<arrow_array::RecordBatch>,
    f: impl Fn(&Cols, usize) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for batch in batches {
        let c = Cols {
            batch: &batch,
            path,
        };
        for i in 0..batch.num_rows() {
            out.push(f(&c, i)?);
        }
    }
    Ok(out)
}

pub fn read_search_rows(path: &Path) -> Result<Vec<SearchRow>> {
    rows(path, search_row)
}

/// Search rows of an in-memory Parquet file (an evaluation's inputs on a worker); `label` names it in errors.
pub fn search_rows_from_bytes(bytes: &[u8], label: &str) -> Result<Vec<SearchRow>> {
    let batches = super::io::decode_parquet(bytes).map_err(|e| SweepError::table(label, e))?;
    rows_of(Path::new(label), batches, search_row)
}

fn search_row(c: &Cols, i: usize) -> Result<SearchRow> {
    {
        Ok(SearchRow {
            unit_id: c.s("unit_id", i)?,
            setting: c.s("setting", i)?,
            class: c.i("class", i)?,
            class_name: c.s("class_name", i)?,
            canvas_kind: c.s("canvas_kind", i)?,
            canvas_rank: c.i("canvas_rank", i)?,
            canvas_index: c.i("canvas_index", i)?,
            alpha: c.f("alpha", i)?,
            objective: c.s("objective", i)?,
            variant: c.s("variant", i)?,
            tv_beta: c.f("tv_beta", i)?,
            learned_canvas: c.ofloats("learned_canvas", i)?,
            seed: c.i("seed", i)?,
            epochs: c.i("epochs", i)?,
            batch: c.i("batch", i)?,
            lr: c.f("lr", i)?,
            subset_fraction: c.f("subset_fraction", i)?,
            final_loss: c.f("final_loss", i)?,
            mask: c.floats("mask", i)?,
            height: c.i("height", i)?,
            width: c.i("width", i)?,
            duration_s: c.f("duration_s", i)?,
            batched_with: c.i("batched_with", i)?,
            oom_halvings: c.i_or("oom_halvings", i, 0)?,
            worker: c.s("worker", i)?,
            device: c.s("device", i)?,
            attempt: c.i("attempt", i)?,
        })
    }
}

pub fn read_pattern_rows(path: &Path) -> Result<Vec<PatternRow>> {
    rows(path, pattern_row)
}

/// Pattern rows of an in-memory Parquet file (a finishing unit's inputs); `label` names it in errors.
pub fn pattern_rows_from_bytes(bytes: &[u8], label: &str) -> Result<Vec<PatternRow>> {
    let batches = super::io::decode_parquet(bytes).map_err(|e| SweepError::table(label, e))?;
    rows_of(Path::new(label), batches, pattern_row)
}

fn pattern_row(c: &Cols, i: usize) -> Result<PatternRow> {
    Ok(PatternRow {
        unit_id: c.s("unit_id", i)?,
        search_id: c.s("search_id", i)?,
        setting: c.s("setting", i)?,
        class: c.i("class", i)?,
        class_name: c.s("class_name", i)?,
        alpha: c.f("alpha", i)?,
        objective: c.s("objective", i)?,
        variant: c.s("variant", i)?,
        tv_beta: c.f("tv_beta", i)?,
        canvas_kind: c.s("canvas_kind", i)?,
        canvas_rank: c.i("canvas_rank", i)?,
        canvas_index: c.i("canvas_index", i)?,
        size: c.f("size", i)?,
        k: c.i("k", i)?,
        selection_loss: c.f("selection_loss", i)?,
        is_best: c.b("is_best", i)?,
        pw: c.of("pw", i)?,
        pw_heldout: c.of("pw_heldout", i)?,
        acc_with_pattern: c.of("acc_with_pattern", i)?,
        acc_with_pattern_heldout: c.of("acc_with_pattern_heldout", i)?,
        original_class_acc: c.of("original_class_acc", i)?,
        original_class_acc_heldout: c.of("original_class_acc_heldout", i)?,
        oom_halvings: c.i_or("oom_halvings", i, 0)?,
        evaluate_s: c.f_or("evaluate_s", i, 0.0)?,
    })
}

pub fn read_model_rows(path: &Path) -> Result<Vec<ModelRow>> {
    rows(path, model_row)
}

/// The model rows of a part's bytes; `label` names it in errors.
pub fn model_rows_from_bytes(bytes: &[u8], label: &str) -> Result<Vec<ModelRow>> {
    let batches = super::decode_parquet(bytes).map_err(|e| SweepError::table(label, e))?;
    rows_of(Path::new(label), batches, model_row)
}

fn model_row(c: &Cols, i: usize) -> Result<ModelRow> {
    {
        Ok(ModelRow {
            unit_id: c.s("unit_id", i)?,
            setting: c.s("setting", i)?,
            setting_kind: c.s("setting_kind", i)?,
            architecture: c.s("architecture", i)?,
            source: c.s("source", i)?,
            checkpoint_sha256: c.s("checkpoint_sha256", i)?,
            clean_accuracy: c.f("clean_accuracy", i)?,
            attack_success_rate: c.of("attack_success_rate", i)?,
            poison_target: c.oi("poison_target", i)?,
            trigger: c.os("trigger", i)?,
            trigger_row: c.oi_new("trigger_row", i)?,
            trigger_col: c.oi_new("trigger_col", i)?,
            trigger_size: c.oi_new("trigger_size", i)?,
            attack_failed: c.ob_new("attack_failed", i)?,
            robust_accuracy: c.of("robust_accuracy", i)?,
            poison_rate: c.of("poison_rate", i)?,
            poisoned_images: c.oi("poisoned_images", i)?,
            train_epochs: c.oi("train_epochs", i)?,
            training_s: c.f("training_s", i)?,
        })
    }
}
