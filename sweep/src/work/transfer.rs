//! Transfer: the best patterns found on one setting's model, evaluated on another's model (same
//! data), into the `transfer` table with the ratio of their predictive powers.

use super::evaluate::search_canvas;
use super::Inputs;
use crate::tables::{table_row, Row};
use crate::Result;
use arrow_array::RecordBatch;
use iscp_engine::data::Dataset;
use iscp_engine::pattern::{binarize, Evaluator};

table_row! {
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
}

pub fn transfer_batch(rows: &[TransferRow]) -> RecordBatch {
    Row::batch(rows)
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
