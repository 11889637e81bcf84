//! The search unit: pick the canvas of the requested kind and rank, run the mask search, make its row.

use crate::tables::SearchRow;
use crate::units::SearchParams;
use crate::Result;
use iscp_engine::canvas::{canvas_image, rank_canvases};
use iscp_engine::data::Dataset;
use iscp_engine::model::Model;
use iscp_engine::rng::mix;
use iscp_engine::search::{search, SearchConfig};
use iscp_engine::EngineError;
use std::time::Instant;
use tch::Tensor;

/// Everything a setting's searches share: the model, test set, clean logits and labels.
pub struct SearchContext<'a> {
    pub model: &'a Model,
    pub test: &'a Dataset,
    pub clean_logits: &'a Tensor,
    pub labels: &'a [i64],
    pub worker: &'a str,
    pub device: &'a str,
}

/// The dataset index of the canvas a search uses (−1 for white).
pub fn canvas_index(ctx: &SearchContext, p: &SearchParams) -> Result<i64> {
    let ranked = rank_canvases(
        p.canvas_kind,
        ctx.clean_logits,
        ctx.labels,
        p.class,
        p.canvas_rank + 1,
        p.seed,
    );
    ranked.get(p.canvas_rank).copied().ok_or_else(|| {
        EngineError::Invalid(format!(
            "class {} has only {} {} canvas(es); rank {} does not exist",
            p.class,
            ranked.len(),
            p.canvas_kind.name(),
            p.canvas_rank
        ))
        .into()
    })
}

/// Runs one search over `pool` (D_n on the model's device).
pub fn run_search(
    ctx: &SearchContext,
    unit_id: &str,
    p: &SearchParams,
    pool: &Tensor,
    attempt: i64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SearchRow> {
    let started = Instant::now();
    let index = canvas_index(ctx, p)?;
    let canvas = canvas_image(ctx.test, index)?;
    let cfg = SearchConfig {
        objective: p.objective,
        alpha: p.alpha,
        epochs: p.epochs,
        batch: p.batch,
        lr: p.lr,
        seed: mix(&[p.seed, p.class as u64]),
    };
    let out = search(ctx.model, &canvas, pool, p.class, &cfg, progress)?;
    let [_, h, w] = ctx.test.image_shape();
    Ok(SearchRow {
        unit_id: unit_id.to_string(),
        setting: p.setting.clone(),
        class: p.class,
        class_name: ctx.test.class_names[p.class as usize].clone(),
        canvas_kind: p.canvas_kind.name().into(),
        canvas_rank: p.canvas_rank as i64,
        canvas_index: index,
        alpha: p.alpha,
        objective: p.objective.name().into(),
        variant: "base".into(),
        seed: p.seed as i64,
        epochs: p.epochs as i64,
        batch: p.batch as i64,
        lr: p.lr,
        subset_fraction: p.subset_fraction,
        final_loss: out.final_loss,
        mask: out.mask,
        height: h,
        width: w,
        duration_s: started.elapsed().as_secs_f64(),
        worker: ctx.worker.into(),
        device: ctx.device.into(),
        attempt,
    })
}
