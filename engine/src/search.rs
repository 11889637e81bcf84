//! The ISCP mask search (Algorithm 1): one mask over a canvas, optimised on shuffled minibatches of
//! non-target images with the `paper` or the `released` objective, clamped to [0,1] after every step.

use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which loss and update rule the search uses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Eq. 2: L = Σ_j [−log f_y(x̃_j) + α‖m‖₁/n], plain gradient step.
    Paper,
    /// The authors' code: L = α·mean_j CE(x̃_j, y) + (1−α)·‖m‖₁/(n/2), signed step.
    #[default]
    Released,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Paper => "paper",
            Objective::Released => "released",
        }
    }
}

/// Search hyper-parameters (defaults: T = 5, B = 4, η = 0.02).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchConfig {
    pub objective: Objective,
    pub alpha: f64,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// Seeds the data order (one shuffle per epoch).
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            objective: Objective::Released,
            alpha: 0.2,
            epochs: 5,
            batch: 4,
            lr: 0.02,
            seed: 0,
        }
    }
}

/// A finished search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// The continuous mask, H·W values in [0,1], row-major.
    pub mask: Vec<f32>,
    /// Mean objective value over the steps of the last epoch.
    pub final_loss: f64,
    pub steps: usize,
}

/// The objective's value for one minibatch (`logits` of the mixed images, mask 1×1×H×W).
pub fn objective_loss(
    objective: Objective,
    alpha: f64,
    logits: &Tensor,
    target: i64,
    mask: &Tensor,
) -> Tensor {
    let b = logits.size()[0];
    let n = mask.numel() as f64;
    let y = Tensor::full([b], target, (Kind::Int64, logits.device()));
    let l1 = mask.abs().sum(Kind::Float);
    match objective {
        Objective::Paper => {
            let ce_sum =
                logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100, 0.0);
            ce_sum + l1 * (alpha * b as f64 / n)
        }
        Objective::Released => {
            let ce_mean = logits.cross_entropy_for_logits(&y);
            ce_mean * alpha + l1 * ((1.0 - alpha) / (n / 2.0))
        }
    }
}

/// One optimisation step on `mask` (1×1×H×W, requires grad) in place; returns the loss value.
pub fn step(
    model: &Model,
    mask: &mut Tensor,
    canvas: &Tensor,
    xn: &Tensor,
    target: i64,
    cfg: &SearchConfig,
) -> Result<f64> {
    let mixed = mask.shallow_clone() * canvas.unsqueeze(0) + (1.0 - mask.shallow_clone()) * xn;
    let logits = model.logits(&mixed)?;
    let loss = objective_loss(cfg.objective, cfg.alpha, &logits, target, mask);
    let grad = Tensor::f_run_backward(&[&loss], &[&*mask], false, false)?.remove(0);
    tch::no_grad(|| {
        let update = match cfg.objective {
            Objective::Paper => grad * cfg.lr,
            Objective::Released => grad.sign() * cfg.lr,
        };
        let _ = mask.f_sub_(&update).and_then(|mut m| m.f_clamp_(0.0, 1.0));
    });
    Ok(loss.double_value(&[]))
}

/// Runs a full search for `target` on `canvas` (C×H×W) over `pool` (D_n, N×C×H×W, on the model's
/// device). `progress(step, total)` is called after every step.
pub fn search(
    model: &Model,
    canvas: &Tensor,
    pool: &Tensor,
    target: i64,
    cfg: &SearchConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SearchOutcome> {
    let s = pool.size();
    if s.len() != 4 || s[0] == 0 {
        return Err(EngineError::Invalid(format!(
            "the non-target subset is empty or not N×C×H×W: {s:?}"
        )));
    }
    if cfg.batch == 0 || cfg.epochs == 0 {
        return Err(EngineError::Invalid(
            "search needs epochs ≥ 1 and batch ≥ 1".into(),
        ));
    }
    if target < 0 || target as usize >= model.num_classes() {
        return Err(EngineError::Invalid(format!(
            "target class {target} is not one of the {} classes",
            model.num_classes()
        )));
    }
    let device = pool.device();
    let canvas = canvas.to_device(device);
    let (h, w) = (s[2], s[3]);
    let mut mask = Tensor::full([1, 1, h, w], 0.5, (Kind::Float, device)).set_requires_grad(true);
    let n = s[0] as usize;
    let per_epoch = n.div_ceil(cfg.batch);
    let total = per_epoch * cfg.epochs;
    let mut done = 0;
    let mut last_epoch_loss = 0.0;
    for epoch in 0..cfg.epochs {
        let mut order: Vec<i64> = (0..n as i64).collect();
        Rng::new(mix(&[cfg.seed, epoch as u64])).shuffle(&mut order);
        last_epoch_loss = 0.0;
        for chunk in order.chunks(cfg.batch) {
            let xn = pool.index_select(0, &Tensor::from_slice(chunk).to_device(device));
            last_epoch_loss += step(model, &mut mask, &canvas, &xn, target, cfg)?;
            done += 1;
            progress(done, total);
        }
    }
    let mask: Vec<f32> = Vec::try_from(mask.detach().to_device(tch::Device::Cpu).flatten(0, -1))?;
    Ok(SearchOutcome {
        mask,
        final_loss: last_epoch_loss / per_epoch as f64,
        steps: total,
    })
}
