//! The evaluate unit: binarise every search of a group at every size, evaluate each pattern, and mark
//! per size the canvas with the lowest selection loss on D_n as best.

use crate::tables::{PatternRow, SearchRow};
use crate::units::EvaluateParams;
use crate::Result;
use iscp_engine::canvas::canvas_image;
use iscp_engine::pattern::{binarize, pattern_k, Evaluator};

/// Evaluates the group's searches (`searches` in the unit's order).
pub fn run_evaluate(
    ev: &Evaluator,
    unit_id: &str,
    p: &EvaluateParams,
    searches: &[SearchRow],
) -> Result<Vec<PatternRow>> {
    let mut rows = Vec::new();
    for s in searches {
        let canvas = canvas_image(ev.test, s.canvas_index)?;
        for &size in &p.sizes {
            let k = pattern_k(size, s.mask.len());
            let bin = binarize(&s.mask, k);
            let e = ev.evaluate(p.class, &canvas, &bin)?;
            rows.push(PatternRow {
                unit_id: unit_id.to_string(),
                search_id: s.unit_id.clone(),
                setting: p.setting.clone(),
                class: p.class,
                class_name: s.class_name.clone(),
                alpha: p.alpha,
                objective: p.objective.name().into(),
                canvas_kind: s.canvas_kind.clone(),
                canvas_rank: s.canvas_rank,
                canvas_index: s.canvas_index,
                size,
                k: k as i64,
                selection_loss: e.selection_loss,
                is_best: false,
                pw: e.pw,
                pw_heldout: e.pw_heldout,
                acc_with_pattern: e.acc_with_pattern,
                acc_with_pattern_heldout: e.acc_with_pattern_heldout,
                original_class_acc: e.original_class_acc,
                original_class_acc_heldout: e.original_class_acc_heldout,
            });
        }
    }
    mark_best(&mut rows);
    Ok(rows)
}

/// For each size, flags the row with the lowest selection loss (first one on ties; NaN never wins).
pub fn mark_best(rows: &mut [PatternRow]) {
    let mut sizes: Vec<f64> = Vec::new();
    for r in rows.iter() {
        if !sizes.contains(&r.size) {
            sizes.push(r.size);
        }
    }
    for size in sizes {
        let best = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.size == size && !r.selection_loss.is_nan())
            .min_by(|(_, a), (_, b)| a.selection_loss.total_cmp(&b.selection_loss))
            .map(|(i, _)| i);
        if let Some(i) = best {
            rows[i].is_best = true;
        }
    }
}
