//! A targeted-UAP detector: per class, one universal perturbation within a small L∞ radius that
//! pushes clean images towards the class, all classes at once; a backdoor target is reached by a
//! far larger share of images than the other classes, whatever shape the trigger has (it needs no
//! patch, only that the trigger's effect fits the radius).

use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use tch::{Kind, Tensor};

/// The detector's budget.
#[derive(Debug, Clone, PartialEq)]
pub struct UapScanConfig {
    /// L∞ radius in pixel units.
    pub eps: f64,
    /// Passes over the clean images.
    pub epochs: usize,
    /// Clean images per step (each goes through the model once per class).
    pub batch: usize,
    pub seed: u64,
}

impl Default for UapScanConfig {
    fn default() -> Self {
        UapScanConfig {
            eps: 0.1,
            epochs: 3,
            batch: 16,
            seed: 0,
        }
    }
}

/// Images through the model at once, at most: classes go in chunks of `MAX_IMAGES / batch`.
const MAX_IMAGES: usize = 512;

/// Per class: the share of the clean images not already predicted as the class that its
/// perturbation (signed steps of ε/4 on the targeted cross-entropy) sends to it.
pub fn uap_success_by_class(
    model: &Model,
    clean: &Tensor,
    cfg: &UapScanConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<f64>> {
    let s = clean.size();
    if s.len() != 4 || s[0] == 0 || cfg.batch == 0 || cfg.eps.is_nan() || cfg.eps <= 0.0 {
        return Err(EngineError::Invalid(format!(
            "the UAP scan needs N×C×H×W clean images, batch ≥ 1 and ε > 0 (got {s:?})"
        )));
    }
    let n = s[0] as usize;
    let classes = model.num_classes();
    let batch = cfg.batch.min(n);
    let per_chunk = (MAX_IMAGES / batch).max(1);
    let steps = cfg.epochs.max(1) * n.div_ceil(batch);
    let total = steps * classes.div_ceil(per_chunk);
    let clean = clean.to_device(model.device());
    let mut out = Vec::with_capacity(classes);
    for (i, first) in (0..classes).step_by(per_chunk).enumerate() {
        let k = per_chunk.min(classes - first);
        let delta = perturbations(model, &clean, cfg, first as i64, k as i64, &mut |st| {
            progress(i * steps + st, total)
        })?;
        out.extend(tch::no_grad(|| {
            success(model, &clean, &delta, first as i64, batch as i64)
        })?);
    }
    Ok(out)
}

/// The perturbations of classes `first..first + k` (k×C×H×W), optimised together.
fn perturbations(
    model: &Model,
    clean: &Tensor,
    cfg: &UapScanConfig,
    first: i64,
    k: i64,
    progress: &mut dyn FnMut(usize),
) -> Result<Tensor> {
    let s = clean.size();
    let n = s[0];
    let device = clean.device();
    let targets = Tensor::arange_start(first, first + k, (Kind::Int64, device));
    let mut delta = Tensor::zeros([k, s[1], s[2], s[3]], (Kind::Float, device));
    let batch = (cfg.batch as i64).min(n);
    let mut step = 0;
    for epoch in 0..cfg.epochs.max(1) {
        let mut order: Vec<i64> = (0..n).collect();
        Rng::new(mix(&[cfg.seed, epoch as u64])).shuffle(&mut order);
        for chunk in order.chunks(batch as usize) {
            let b = chunk.len() as i64;
            let x = clean.index_select(0, &Tensor::from_slice(chunk).to_device(device));
            let d = delta.detach().set_requires_grad(true);
            let adv = perturbed(&x, &d);
            let y = targets.repeat_interleave_self_int(b, Some(0), None::<i64>);
            let loss = model.logits(&adv)?.cross_entropy_for_logits(&y);
            let g = crate::grad::grad_or_zero(&loss, &d)?;
            delta = (delta - g.sign() * (cfg.eps / 4.0)).clamp(-cfg.eps, cfg.eps);
            step += 1;
            progress(step);
        }
    }
    Ok(delta)
}

/// Every class's perturbation on every image: K·B images, class-major.
fn perturbed(x: &Tensor, delta: &Tensor) -> Tensor {
    let s = x.size();
    let k = delta.size()[0];
    (x.unsqueeze(0) + delta.unsqueeze(1))
        .clamp(0.0, 1.0)
        .view([k * s[0], s[1], s[2], s[3]])
}

/// Per class of `first..`: the share of images not predicted as it before that are after its
/// perturbation.
fn success(
    model: &Model,
    clean: &Tensor,
    delta: &Tensor,
    first: i64,
    batch: i64,
) -> Result<Vec<f64>> {
    let (n, k) = (clean.size()[0], delta.size()[0]);
    let (mut hit, mut eligible) = (vec![0f64; k as usize], vec![0f64; k as usize]);
    for start in (0..n).step_by(batch as usize) {
        let x = clean.narrow(0, start, batch.min(n - start));
        let b = x.size()[0];
        let before = model.logits(&x)?.argmax(1, false);
        let after = model
            .logits(&perturbed(&x, delta))?
            .argmax(1, false)
            .view([k, b]);
        for c in 0..k {
            let was = before.ne(first + c);
            let now = after.get(c).eq(first + c).logical_and(&was);
            eligible[c as usize] += was.sum(Kind::Float).double_value(&[]);
            hit[c as usize] += now.sum(Kind::Float).double_value(&[]);
        }
    }
    Ok(hit
        .iter()
        .zip(&eligible)
        .map(|(h, e)| if *e > 0.0 { h / e } else { 0.0 })
        .collect())
}
