//! Baseline units: a class-wise targeted UAP at one ε, or Grad-CAM patches on the search canvases
//! (the canvas with the lowest selection loss on D_n is best and gets its predictive power).

use super::search_unit::{canvas_index, SearchContext};
use crate::tables::BaselineRow;
use crate::units::{BaselineParams, SearchParams};
use crate::Result;
use iscp_engine::baselines::{class_uap, grad_cam, uap_success, UapConfig};
use iscp_engine::canvas::{canvas_image, CanvasKind};
use iscp_engine::pattern::{binarize, pattern_k, Evaluator};
use iscp_engine::rng::mix;
use iscp_engine::search::Objective;
use tch::Tensor;

fn row(ctx: &SearchContext, unit_id: &str, p: &BaselineParams) -> BaselineRow {
    let [c, h, w] = ctx.test.image_shape();
    BaselineRow {
        unit_id: unit_id.into(),
        setting: p.setting.clone(),
        class: p.class,
        class_name: ctx.test.class_names[p.class as usize].clone(),
        method: p.method.clone(),
        epsilon: p.eps,
        canvas_kind: None,
        canvas_rank: None,
        canvas_index: None,
        size: p.size,
        k: None,
        selection_loss: None,
        is_best: true,
        pw: None,
        pw_heldout: None,
        pattern: vec![],
        channels: c,
        height: h,
        width: w,
    }
}

/// The class-wise targeted UAP at ε over `pool` (D_n), with its success rate on all non-target
/// test images and on the held-out ones.
fn uap_rows(
    ctx: &SearchContext,
    images: &Tensor,
    unit_id: &str,
    p: &BaselineParams,
    pool: &[i64],
    eps: f64,
) -> Result<Vec<BaselineRow>> {
    let cfg = UapConfig {
        seed: mix(&[p.seed, p.class as u64]),
        ..UapConfig::new(eps)
    };
    let delta = class_uap(ctx.model, images, pool, p.class, &cfg)?;
    let heldout: Vec<bool> = (0..ctx.labels.len() as i64)
        .map(|i| ctx.split.search.binary_search(&i).is_err())
        .collect();
    let mut r = row(ctx, unit_id, p);
    r.pw = Some(uap_success(ctx.model, ctx.test, p.class, &delta, None)?);
    r.pw_heldout = Some(uap_success(
        ctx.model,
        ctx.test,
        p.class,
        &delta,
        Some(&heldout),
    )?);
    r.pattern = Vec::try_from(delta.flatten(0, -1).to_device(tch::Device::Cpu))?;
    Ok(vec![r])
}

/// The search parameters that pick the canvas (kind, rank) of the class the way its searches do.
fn canvas_params(p: &BaselineParams, kind: CanvasKind, rank: usize) -> SearchParams {
    SearchParams {
        setting: p.setting.clone(),
        prepare_id: p.prepare_id.clone(),
        class: p.class,
        canvas_kind: kind,
        canvas_rank: rank,
        alpha: 0.0,
        objective: Objective::Released,
        epochs: 0,
        batch: 0,
        lr: 0.0,
        subset_fraction: p.subset_fraction,
        seed: p.seed,
        variant: Default::default(),
    }
}

/// The Grad-CAM patch on one canvas (kind, rank) as a row with its selection loss, with the
/// canvas and the binary patch; None when the canvas cannot be picked.
fn gradcam_row(
    ctx: &SearchContext,
    ev: &Evaluator,
    unit_id: &str,
    p: &BaselineParams,
    (kind, rank): (CanvasKind, usize),
    size: f64,
) -> Result<Option<(BaselineRow, Tensor, Vec<f32>)>> {
    let sp = canvas_params(p, kind, rank);
    let Ok(index) = canvas_index(ctx, &sp) else {
        return Ok(None);
    };
    let canvas = canvas_image(ctx.test, index)?;
    let cam = grad_cam(ctx.model, &canvas, p.class)?;
    let k = pattern_k(size, cam.len());
    let bin = binarize(&cam, k);
    let mut r = row(ctx, unit_id, p);
    r.canvas_kind = Some(kind.name().into());
    r.canvas_rank = Some(rank as i64);
    r.canvas_index = Some(index);
    r.k = Some(k as i64);
    r.selection_loss = Some(ev.selection_loss(p.class, &canvas, &bin)?);
    r.is_best = false;
    r.pattern = bin.clone();
    r.channels = 1;
    Ok(Some((r, canvas, bin)))
}

/// Grad-CAM patches on the class's canvases; the one with the lowest selection loss is best and
/// gets its predictive power.
fn gradcam_rows(
    ctx: &SearchContext,
    ev: &Evaluator,
    unit_id: &str,
    p: &BaselineParams,
) -> Result<Vec<BaselineRow>> {
    let size = p.size.unwrap_or(0.1);
    let mut rows = Vec::new();
    let mut masks = Vec::new();
    for &canvas in &p.canvases {
        let Some((r, image, bin)) = gradcam_row(ctx, ev, unit_id, p, canvas, size)? else {
            continue;
        };
        rows.push(r);
        masks.push((image, bin));
    }
    let best = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.selection_loss.unwrap_or(f64::NAN).is_nan())
        .min_by(|a, b| {
            a.1.selection_loss
                .unwrap()
                .total_cmp(&b.1.selection_loss.unwrap())
        })
        .map(|(i, _)| i);
    if let Some(i) = best {
        let e = ev.evaluate(p.class, &masks[i].0, &masks[i].1)?;
        rows[i].is_best = true;
        rows[i].pw = Some(e.pw);
        rows[i].pw_heldout = Some(e.pw_heldout);
    }
    Ok(rows)
}

/// Runs one baseline unit; `images` are the test images on the model's device.
pub fn run_baseline(
    ctx: &SearchContext,
    ev: &Evaluator,
    images: &Tensor,
    unit_id: &str,
    p: &BaselineParams,
) -> Result<Vec<BaselineRow>> {
    let pool = ctx.split.non_target(ctx.labels, p.class);
    match (p.method.as_str(), p.eps) {
        ("uap", Some(eps)) => uap_rows(ctx, images, unit_id, p, &pool, eps),
        ("gradcam", _) => gradcam_rows(ctx, ev, unit_id, p),
        _ => Err(
            iscp_engine::EngineError::Invalid(format!("unknown baseline `{}`", p.method)).into(),
        ),
    }
}
