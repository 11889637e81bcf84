//! The evaluate unit: binarise every search of a group at every size, score each pattern's
//! selection loss on D_n, mark per size the canvas with the lowest as best, and measure the best
//! pattern's predictive power on the test set (all patterns of the group in shared batches, each
//! test image through the model once per pattern).

use crate::tables::{PatternRow, SearchRow};
use crate::units::EvaluateParams;
use crate::Result;
use iscp_engine::canvas::canvas_image;
use iscp_engine::pattern::{binarize, pattern_k, Evaluator, Pattern, SearchScore};

/// The canvas a search's pattern is cut from: its learned canvas, or the dataset image it started from.
pub fn search_canvas(test: &iscp_engine::data::Dataset, s: &SearchRow) -> Result<tch::Tensor> {
    match &s.learned_canvas {
        Some(c) => Ok(tch::Tensor::from_slice(c).view(test.image_shape())),
        None => Ok(canvas_image(test, s.canvas_index)?),
    }
}

/// Evaluates the group's searches (`searches` in the unit's order).
pub fn run_evaluate(
    ev: &Evaluator,
    unit_id: &str,
    p: &EvaluateParams,
    searches: &[SearchRow],
) -> Result<Vec<PatternRow>> {
    let started = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut masks = Vec::new();
    for s in searches {
        let canvas = search_canvas(ev.test, s)?;
        for &size in &p.sizes {
            let k = pattern_k(size, s.mask.len());
            rows.push(PatternRow {
                unit_id: unit_id.to_string(),
                search_id: s.unit_id.clone(),
                setting: p.setting.clone(),
                class: p.class,
                class_name: s.class_name.clone(),
                alpha: p.alpha,
                objective: p.objective.name().into(),
                variant: p.variant.name().into(),
                tv_beta: p.variant.tv_beta,
                canvas_kind: s.canvas_kind.clone(),
                canvas_rank: s.canvas_rank,
                canvas_index: s.canvas_index,
                size,
                k: k as i64,
                selection_loss: f64::NAN,
                is_best: false,
                pw: None,
                pw_heldout: None,
                acc_with_pattern: None,
                acc_with_pattern_heldout: None,
                original_class_acc: None,
                original_class_acc_heldout: None,
                oom_halvings: 0,
                evaluate_s: 0.0,
            });
            masks.push((canvas.shallow_clone(), binarize(&s.mask, k)));
        }
    }
    // Every pattern of the group in shared no-grad batches: each on D_n (its selection loss), then
    // the best ones on the held-out images only; their D_n hits are not computed twice.
    let patterns: Vec<Pattern> = masks.iter().map(|(c, b)| (c, b.as_slice())).collect();
    let scores = ev.search_scores(p.class, &patterns)?;
    for (row, s) in rows.iter_mut().zip(&scores) {
        row.selection_loss = s.selection_loss;
    }
    mark_best(&mut rows);
    let best: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_best).collect();
    let chosen: Vec<Pattern> = best.iter().map(|&i| patterns[i]).collect();
    let chosen_scores: Vec<SearchScore> = best.iter().map(|&i| scores[i]).collect();
    for (&i, e) in best
        .iter()
        .zip(ev.complete(p.class, &chosen, &chosen_scores)?)
    {
        let row = &mut rows[i];
        row.pw = Some(e.pw);
        row.pw_heldout = Some(e.pw_heldout);
        row.acc_with_pattern = Some(e.acc_with_pattern);
        row.acc_with_pattern_heldout = Some(e.acc_with_pattern_heldout);
        row.original_class_acc = Some(e.original_class_acc);
        row.original_class_acc_heldout = Some(e.original_class_acc_heldout);
    }
    for row in &mut rows {
        row.oom_halvings = ev.oom_halvings() as i64;
        row.evaluate_s = started.elapsed().as_secs_f64();
    }
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
