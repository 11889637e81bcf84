//! Transfer: the best patterns found on one setting's model, evaluated on another's model (same
//! data), into the `transfer` table with the ratio of their predictive powers.

use super::evaluate::search_canvas;
use super::Inputs;
use crate::Result;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use iscp_engine::data::Dataset;
use iscp_engine::pattern::{binarize, Evaluator};
use std::sync::Arc;

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

/// Evaluates every best pattern of the evaluations of setting `from` (from `inputs`) with `ev`,
/// which holds setting `to`'s model.
pub fn transfer_rows(
    inputs: &Inputs,
    from: &str,
    to: &str,
    evaluations: &[String],
    ev: &Evaluator,
    test: &Dataset,
) -> Result<Vec<TransferRow>> {
    let mut out = Vec::new();
    for u in evaluations {
        let Some(rows) = inputs.patterns(u)? else {
            continue;
        };
        for p in rows.into_iter().filter(|p| p.is_best) {
            let s = inputs.search(&p.search_id)?;
            let bin = binarize(&s.mask, p.k as usize);
            let e = ev.evaluate(p.class, &search_canvas(test, &s)?, &bin)?;
            let pw_from = p.pw.unwrap_or(f64::NAN);
            out.push(TransferRow {
                from_setting: from.to_string(),
                to_setting: to.to_string(),
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
    Ok(out)
}
