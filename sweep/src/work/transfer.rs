//! Transfer: the best patterns found on one setting's model, evaluated on another's model (same
//! data), into the `transfer` table with the ratio of their predictive powers.

use super::evaluate::search_canvas;
use super::prepare::load_prepared;
use super::Layout;
use crate::spec::SettingSpec;
use crate::tables::{self, read_model_rows, read_pattern_rows, read_search_rows};
use crate::units::SettingPlan;
use crate::{CoordError, Result};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use iscp_engine::data::{DataSplits, Split};
use iscp_engine::pattern::{binarize, Evaluator};
use std::sync::Arc;
use tch::Device;

/// One row of `transfer`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRow {
    pub from_setting: String,
    pub to_setting: String,
    pub class: i64,
    pub class_name: String,
    pub alpha: f64,
    pub objective: String,
    pub variant: String,
    pub size: f64,
    pub search_id: String,
    pub pw_from: f64,
    pub pw_to: f64,
    /// pw_to / pw_from.
    pub ratio: f64,
}

pub fn transfer_batch(rows: &[TransferRow]) -> RecordBatch {
    let s = |f: fn(&TransferRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let fl = |f: fn(&TransferRow) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(rows.iter().map(f)))
    };
    RecordBatch::try_from_iter_with_nullable(vec![
        ("from_setting", s(|r| &r.from_setting), false),
        ("to_setting", s(|r| &r.to_setting), false),
        (
            "class",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.class))) as ArrayRef,
            false,
        ),
        ("class_name", s(|r| &r.class_name), false),
        ("alpha", fl(|r| r.alpha), false),
        ("objective", s(|r| &r.objective), false),
        ("variant", s(|r| &r.variant), false),
        ("size", fl(|r| r.size), false),
        ("search_id", s(|r| &r.search_id), false),
        ("pw_from", fl(|r| r.pw_from), false),
        ("pw_to", fl(|r| r.pw_to), false),
        ("ratio", fl(|r| r.ratio), false),
    ])
    .expect("columns of equal length")
}

/// Evaluates every best pattern of `from` on `to`'s model; both settings must be prepared and
/// `from` evaluated. Writes the part `<from>-to-<to>` and returns its rows.
pub fn run_transfer(
    layout: &Layout,
    from: &SettingPlan,
    to: &SettingPlan,
    to_setting: &SettingSpec,
    data: &DataSplits,
    split: &Split,
    device: Device,
) -> Result<Vec<TransferRow>> {
    let models = tables::part_path(&layout.table("models"), &to.prepare.id);
    if !models.exists() {
        return Err(CoordError::table(
            models,
            format!("setting `{}` has no prepared model", to_setting.name),
        ));
    }
    let row = read_model_rows(&models)?.remove(0);
    let model = load_prepared(
        to_setting,
        &row.checkpoint_sha256,
        data,
        &layout.artifacts(),
        device,
    )?
    .ok_or_else(|| {
        CoordError::table(
            layout.artifacts(),
            format!("the model artifact of `{}` is missing", to_setting.name),
        )
    })?;
    let logits = model.predict_logits(&data.test.images, 1024)?;
    let ev = Evaluator::new(&model, &data.test, &logits, &split.search);
    let mut out = Vec::new();
    for u in &from.evaluations {
        let path = tables::part_path(&layout.table("patterns"), &u.id);
        if !path.exists() {
            continue;
        }
        for p in read_pattern_rows(&path)?.into_iter().filter(|p| p.is_best) {
            let s = read_search_rows(&tables::part_path(&layout.table("searches"), &p.search_id))?
                .remove(0);
            let bin = binarize(&s.mask, p.k as usize);
            let e = ev.evaluate(p.class, &search_canvas(&data.test, &s)?, &bin)?;
            let pw_from = p.pw.unwrap_or(f64::NAN);
            out.push(TransferRow {
                from_setting: from.setting.name.clone(),
                to_setting: to_setting.name.clone(),
                class: p.class,
                class_name: p.class_name.clone(),
                alpha: p.alpha,
                objective: p.objective.clone(),
                variant: p.variant.clone(),
                size: p.size,
                search_id: p.search_id.clone(),
                pw_from,
                pw_to: e.pw,
                ratio: e.pw / pw_from,
            });
        }
    }
    let name = format!("{}-to-{}", from.setting.name, to_setting.name);
    tables::write_part(&layout.table("transfer"), &name, &transfer_batch(&out))?;
    Ok(out)
}
