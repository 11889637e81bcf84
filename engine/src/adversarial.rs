//! PGD under L∞: the attack, the robust accuracy it measures, and the examples adversarial training
//! trains on (Madry et al.: ε = 8/255, step 2/255, 7 steps, random start).

use crate::data::Dataset;
use crate::model::Model;
use crate::Result;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// An untargeted L∞ PGD attack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgdConfig {
    pub eps: f64,
    pub step: f64,
    pub steps: usize,
    pub random_start: bool,
}

impl PgdConfig {
    /// The training attack: ε 8/255, step 2/255, 7 steps, random start.
    pub fn training() -> Self {
        PgdConfig {
            eps: 8.0 / 255.0,
            step: 2.0 / 255.0,
            steps: 7,
            random_start: true,
        }
    }

    /// The evaluation attack: PGD-20 with the same ε and step.
    pub fn pgd20() -> Self {
        PgdConfig {
            steps: 20,
            ..Self::training()
        }
    }
}

/// Adversarial examples for (x, y) within ε of x and inside [0,1]. Gradients flow only to the
/// input, never into the model's parameters, so it is safe in the middle of training.
pub fn pgd(model: &Model, x: &Tensor, y: &Tensor, cfg: &PgdConfig) -> Result<Tensor> {
    let mut adv = if cfg.random_start {
        (x + (x.rand_like() * 2.0 - 1.0) * cfg.eps).clamp(0.0, 1.0)
    } else {
        x.shallow_clone()
    };
    for _ in 0..cfg.steps {
        let a = adv.detach().set_requires_grad(true);
        let loss = model.logits(&a)?.cross_entropy_for_logits(y);
        let g = crate::grad::grad_or_zero(&loss, &a)?;
        adv = tch::no_grad(|| {
            let stepped = a.detach() + g.sign() * cfg.step;
            let lo = (x - cfg.eps).clamp_min(0.0);
            let hi = (x + cfg.eps).clamp_max(1.0);
            stepped.maximum(&lo).minimum(&hi)
        });
    }
    Ok(adv.detach())
}

/// Accuracy under `cfg` on the first `limit` test images.
pub fn robust_accuracy(
    model: &Model,
    test: &Dataset,
    cfg: &PgdConfig,
    limit: usize,
    batch: i64,
) -> Result<f64> {
    let n = (test.len().min(limit)) as i64;
    if n == 0 {
        return Ok(f64::NAN);
    }
    let mut correct = 0i64;
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let x = test.images.narrow(0, start, len).to_device(model.device());
        let y = test.labels.narrow(0, start, len).to_device(model.device());
        let adv = pgd(model, &x, &y, cfg)?;
        let pred = tch::no_grad(|| model.logits(&adv))?.argmax(1, false);
        correct += pred.eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
        start += len;
    }
    Ok(correct as f64 / n as f64)
}
