//! MM-BD (Wang et al., IEEE S&P 2024): per class, the largest margin its logit reaches over every
//! other class on any input in [0, 1], found by projected Adam ascent from random starts, all
//! classes at once. A backdoor target reaches a margin far above the other classes' whatever the
//! trigger looks like (patch, blend, warp); the statistic needs no clean images. The null is a
//! gamma distribution fitted to the other classes' margins.

use crate::adam::Adam;
use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use statrs::function::gamma::gamma_ur;
use tch::{Kind, Tensor};

/// MM-BD's budget.
#[derive(Debug, Clone, PartialEq)]
pub struct MarginConfig {
    /// Random starting images per class.
    pub starts: usize,
    /// Ascent steps.
    pub steps: usize,
    /// Adam's step size on pixel values.
    pub lr: f64,
    pub seed: u64,
}

impl Default for MarginConfig {
    fn default() -> Self {
        MarginConfig {
            starts: 8,
            steps: 200,
            lr: 0.05,
            seed: 0,
        }
    }
}

/// Images through the model at once: classes go in chunks of `MAX_IMAGES / starts`.
const MAX_IMAGES: usize = 256;

/// The largest margin each class reached: logit of the class minus the largest other logit.
pub fn max_margins(
    model: &Model,
    shape: [i64; 3],
    cfg: &MarginConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<f64>> {
    let classes = model.num_classes();
    let per_chunk = (MAX_IMAGES / cfg.starts.max(1)).max(1);
    let chunks = classes.div_ceil(per_chunk);
    let steps = cfg.steps.max(1);
    let mut out = Vec::with_capacity(classes);
    for (i, first) in (0..classes).step_by(per_chunk).enumerate() {
        let k = per_chunk.min(classes - first);
        let done = i * steps;
        out.extend(ascend(model, shape, cfg, first, k, &mut |s| {
            progress(done + s, chunks * steps)
        })?);
    }
    Ok(out)
}

/// Projected Adam ascent of the margins of classes `first..first + k`, `cfg.starts` images each;
/// each class's best margin over its starts and steps.
fn ascend(
    model: &Model,
    [c, h, w]: [i64; 3],
    cfg: &MarginConfig,
    first: usize,
    k: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<f64>> {
    let classes = model.num_classes() as i64;
    let starts = cfg.starts.max(1) as i64;
    let n = k as i64 * starts;
    let mut rng = Rng::new(mix(&[cfg.seed, 0x3A4D, first as u64]));
    let init: Vec<f32> = (0..n * c * h * w).map(|_| rng.unit_f64() as f32).collect();
    let device = model.device();
    let mut x = Tensor::from_slice(&init)
        .view([n, c, h, w])
        .to_device(device);
    let labels = Tensor::arange_start(first as i64, (first + k) as i64, (Kind::Int64, device))
        .repeat_interleave_self_int(starts, Some(0), None::<i64>);
    let own = labels.one_hot(classes).to_kind(Kind::Bool);
    let mut adam = Adam::new(&x, (0.9, 0.999));
    let mut best = Tensor::full([n], f64::NEG_INFINITY, (Kind::Float, device));
    for t in 1..=cfg.steps.max(1) {
        let xg = x.detach().set_requires_grad(true);
        let margins = margins_of(model, &xg, &labels, &own)?;
        best = best.maximum(&margins.detach());
        // A model whose logits ignore the input has no gradient: its margins are what they are.
        if !margins.requires_grad() {
            break;
        }
        let g = crate::grad::grad_or_zero(&margins.sum(Kind::Float), &xg)?;
        // Ascent: Adam down the negated gradient.
        adam.step(&mut x, &-g, cfg.lr);
        x = x.clamp(0.0, 1.0);
        progress(t);
    }
    let last = tch::no_grad(|| margins_of(model, &x, &labels, &own))?;
    best = best.maximum(&last);
    let per_class = best.view([k as i64, starts]).amax(1, false);
    Vec::<f64>::try_from(per_class.to_kind(Kind::Double))
        .map_err(|e| EngineError::Invalid(format!("margins: {e}")))
}

/// Per image: its label's logit minus the largest other logit.
fn margins_of(model: &Model, x: &Tensor, labels: &Tensor, own: &Tensor) -> Result<Tensor> {
    let logits = model.logits(x)?.to_kind(Kind::Float);
    let mine = logits.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    let others = logits.masked_fill(own, f64::NEG_INFINITY).amax(1, false);
    Ok(mine - others)
}

/// MM-BD's verdict on the largest margin: the p-value of the largest of K margins when the other
/// K − 1 follow a gamma distribution fitted to them (method of moments), i.e. the chance that
/// the largest of K − 1 draws is at least as large. NaN when fewer than 3 classes or the others'
/// margins are not positive with a spread.
pub fn max_margin_p_value(margins: &[f64]) -> f64 {
    if margins.len() < 3 || margins.iter().any(|m| !m.is_finite()) {
        return f64::NAN;
    }
    let top = (0..margins.len())
        .max_by(|&a, &b| margins[a].total_cmp(&margins[b]))
        .expect("classes");
    let rest: Vec<f64> = (0..margins.len())
        .filter(|&i| i != top)
        .map(|i| margins[i])
        .collect();
    let n = rest.len() as f64;
    let mean = rest.iter().sum::<f64>() / n;
    let var = rest.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if mean <= 0.0 || var <= 0.0 || rest.iter().any(|&r| r <= 0.0) {
        return f64::NAN;
    }
    let (shape, scale) = (mean * mean / var, var / mean);
    // P(one draw ≥ top), then P(the largest of n draws ≥ top) = 1 − (1 − q)^n, without
    // cancellation when q is tiny.
    let q = gamma_ur(shape, margins[top] / scale);
    -(n * (-q).ln_1p()).exp_m1()
}

/// The detection score of a p-value: −log10(p), at most 300 (p under 1e-300 reads as 1e-300).
pub fn score_of_p(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    -(p.max(1e-300)).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outlying_margin_has_a_small_p_value() {
        let typical = [5.0, 6.0, 5.5, 4.8, 6.2, 5.1, 5.9, 6.4, 5.3];
        let mut with = typical.to_vec();
        with.push(40.0);
        let p = max_margin_p_value(&with);
        assert!(p < 1e-6, "{p}");
        let mut without = typical.to_vec();
        without.push(6.6);
        let q = max_margin_p_value(&without);
        assert!(q > 0.05, "{q}");
        assert!(score_of_p(p) > 6.0 && score_of_p(q) < 1.3);
        assert!(max_margin_p_value(&[1.0, 2.0]).is_nan());
        assert!(max_margin_p_value(&[-1.0, 2.0, 3.0, 9.0]).is_nan());
    }
}
