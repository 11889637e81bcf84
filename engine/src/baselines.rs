//! The paper's baselines: class-wise targeted universal adversarial perturbations (UAP) and the
//! Grad-CAM high-attention patch used as a pattern.

use crate::data::Dataset;
use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use tch::{Kind, Tensor};

/// How a class-wise UAP is crafted.
#[derive(Debug, Clone, PartialEq)]
pub struct UapConfig {
    /// L∞ radius of δ, in pixel units (e.g. 8/255).
    pub eps: f64,
    /// Signed step size; defaults to ε/4.
    pub step: f64,
    pub epochs: usize,
    pub batch: usize,
    pub seed: u64,
}

impl UapConfig {
    pub fn new(eps: f64) -> Self {
        UapConfig {
            eps,
            step: eps / 4.0,
            epochs: 5,
            batch: 32,
            seed: 0,
        }
    }
}

/// One perturbation δ (C×H×W, ‖δ‖∞ ≤ ε) that pushes the images at `pool` (rows of `images`, on the
/// model's device) towards `target`, by iterative targeted signed steps on the mean cross-entropy.
pub fn class_uap(
    model: &Model,
    images: &Tensor,
    pool: &[i64],
    target: i64,
    cfg: &UapConfig,
) -> Result<Tensor> {
    if pool.is_empty() || cfg.batch == 0 || cfg.eps.is_nan() || cfg.eps <= 0.0 {
        return Err(EngineError::Invalid(
            "a UAP needs a non-empty subset, batch ≥ 1 and ε > 0".into(),
        ));
    }
    let device = images.device();
    let s = images.size();
    let mut delta =
        Tensor::zeros([s[1], s[2], s[3]], (Kind::Float, device)).set_requires_grad(true);
    for epoch in 0..cfg.epochs {
        let mut order = pool.to_vec();
        Rng::new(mix(&[cfg.seed, epoch as u64])).shuffle(&mut order);
        for chunk in order.chunks(cfg.batch) {
            let x = images.index_select(0, &Tensor::from_slice(chunk).to_device(device));
            let adv = (x + delta.unsqueeze(0)).clamp(0.0, 1.0);
            let y = Tensor::full([chunk.len() as i64], target, (Kind::Int64, device));
            let loss = model.logits(&adv)?.cross_entropy_for_logits(&y);
            let g = crate::grad::grad_or_zero(&loss, &delta)?;
            tch::no_grad(|| -> Result<()> {
                let _ = delta
                    .f_sub_(&(g.sign() * cfg.step))?
                    .f_clamp_(-cfg.eps, cfg.eps)?;
                Ok(())
            })?;
        }
    }
    Ok(delta.detach())
}

/// Share of the non-target test images that the model classifies as `target` with δ added.
pub fn uap_success(
    model: &Model,
    test: &Dataset,
    target: i64,
    delta: &Tensor,
    rows: Option<&[bool]>,
) -> Result<f64> {
    let labels = test.labels_vec();
    let idx: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| labels[i as usize] != target && rows.is_none_or(|r| r[i as usize]))
        .collect();
    if idx.is_empty() {
        return Ok(f64::NAN);
    }
    let x = test.images.index_select(0, &Tensor::from_slice(&idx));
    let adv = (x + delta.to_device(tch::Device::Cpu).unsqueeze(0)).clamp(0.0, 1.0);
    let pred = model.predict_logits(&adv, 1024)?.argmax(1, false);
    Ok(pred
        .eq(target)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]))
}

/// The Grad-CAM map (H×W values, ≥ 0) of `target` for one image (C×H×W): the last convolutional
/// block's channels weighted by the spatial mean of the target logit's gradient, summed, passed
/// through ReLU and resized to the image bilinearly.
pub fn grad_cam(model: &Model, image: &Tensor, target: i64) -> Result<Vec<f32>> {
    let x = image.unsqueeze(0).to_device(model.device());
    let (a, head) = model.features(&x)?;
    let a = a.detach().set_requires_grad(true);
    let score = head(&a)?.select(1, target).sum(Kind::Float);
    let g = crate::grad::grad_or_zero(&score, &a)?;
    let weights = g.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    let cam = (weights * a.detach())
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
        .relu();
    let s = image.size();
    let cam = cam.upsample_bilinear2d([s[1], s[2]], false, None, None);
    Ok(Vec::try_from(
        cam.flatten(0, -1).to_device(tch::Device::Cpu),
    )?)
}
