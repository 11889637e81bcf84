//! Search units: pick each unit's canvas (kind and rank), turn the units into jobs for one batched
//! optimisation, and turn each job's outcome into its `searches` row.

use crate::tables::SearchRow;
use crate::units::SearchParams;
use crate::Result;
use iscp_engine::canvas::{canvas_image, rank_canvases};
use iscp_engine::data::{Dataset, Split};
use iscp_engine::model::Model;
use iscp_engine::rng::mix;
use iscp_engine::search::{SearchConfig, SearchJob, SearchOutcome};
use iscp_engine::EngineError;
use tch::Tensor;

/// Everything a setting's searches share: the model, test set, clean logits, labels and split.
pub struct SearchContext<'a> {
    pub model: &'a Model,
    pub test: &'a Dataset,
    pub clean_logits: &'a Tensor,
    pub labels: &'a [i64],
    pub split: &'a Split,
    pub worker: &'a str,
    pub device: &'a str,
    /// `run.precision`, as this device runs it (`Precision::on`).
    pub precision: iscp_engine::amp::Precision,
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

/// The engine job of a search unit (D_n as rows of the test set), and its canvas index.
pub fn search_job(ctx: &SearchContext, p: &SearchParams) -> Result<(SearchJob, i64)> {
    let index = canvas_index(ctx, p)?;
    let cfg = SearchConfig {
        objective: p.objective,
        alpha: p.alpha,
        epochs: p.epochs,
        batch: p.batch,
        lr: p.lr,
        seed: mix(&[p.seed, p.class as u64]),
        tv_beta: p.variant.tv_beta,
        learn_canvas: p.variant.learn_canvas,
        precision: ctx.precision,
    };
    let job = SearchJob {
        target: p.class,
        canvas: canvas_image(ctx.test, index)?,
        pool: ctx.split.non_target(ctx.labels, p.class),
        cfg,
    };
    Ok((job, index))
}

/// Where and how a search ran.
pub struct RunFacts {
    pub attempt: i64,
    /// Wall time of the batch divided by the searches in it.
    pub duration_s: f64,
}

/// The `searches` row of a finished search.
pub fn search_row(
    ctx: &SearchContext,
    unit_id: &str,
    p: &SearchParams,
    index: i64,
    out: SearchOutcome,
    facts: &RunFacts,
) -> SearchRow {
    let [_, h, w] = ctx.test.image_shape();
    SearchRow {
        unit_id: unit_id.to_string(),
        setting: p.setting.clone(),
        class: p.class,
        class_name: ctx.test.class_names[p.class as usize].clone(),
        canvas_kind: p.canvas_kind.name().into(),
        canvas_rank: p.canvas_rank as i64,
        canvas_index: index,
        alpha: p.alpha,
        objective: p.objective.name().into(),
        variant: p.variant.name().into(),
        tv_beta: p.variant.tv_beta,
        learned_canvas: out.canvas,
        seed: p.seed as i64,
        mask: out.mask,
        epochs: p.epochs as i64,
        batch: p.batch as i64,
        lr: p.lr,
        subset_fraction: p.subset_fraction,
        final_loss: out.final_loss,
        height: h,
        width: w,
        duration_s: facts.duration_s,
        batched_with: out.ran_with as i64,
        oom_halvings: out.oom_halvings as i64,
        worker: ctx.worker.into(),
        device: ctx.device.into(),
        attempt: facts.attempt,
    }
}
