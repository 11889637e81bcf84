//! D_R and D_NR (Ilyas et al. 2019): images rebuilt to match another image's representation.
//! Each target image x keeps its label; its replacement starts from another training image and
//! follows L2-normalised gradient steps on ‖g(x_r) − g(x)‖₂, with g the representation of a robust
//! (D_R) or a standard (D_NR) model, pixels kept in [0,1].

use crate::model::Model;
use crate::{EngineError, Result};
use tch::{Kind, Tensor};

/// Steps of the representation inversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InversionConfig {
    /// Gradient steps (the paper's default: 1,000).
    pub steps: usize,
    /// L2 length of each step in pixel space (0.1).
    pub step_size: f64,
}

impl Default for InversionConfig {
    fn default() -> Self {
        InversionConfig {
            steps: 1000,
            step_size: 0.1,
        }
    }
}

/// ‖g(a) − g(b)‖₂ per image (no gradient).
pub fn representation_distance(model: &Model, a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    let d = tch::no_grad(|| -> Result<Tensor> {
        let diff = model.representation(a)? - model.representation(b)?;
        Ok(diff.norm_scalaropt_dim(2, [1], false))
    })?;
    Ok(Vec::<f64>::try_from(d.to_kind(Kind::Double))?)
}

/// Rebuilds every `targets[i]` starting from `starts[i]` (both N×C×H×W in [0,1], on the model's
/// device); `progress(step, steps)` follows. Returns the rebuilt images (same shape, in [0,1]).
pub fn invert_representations(
    model: &Model,
    targets: &Tensor,
    starts: &Tensor,
    cfg: &InversionConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Tensor> {
    if targets.size() != starts.size() {
        return Err(EngineError::Invalid(format!(
            "{:?} targets but {:?} starting images",
            targets.size(),
            starts.size()
        )));
    }
    let n = targets.size()[0];
    let goal = tch::no_grad(|| model.representation(targets))?.detach();
    let mut x = starts.detach().copy();
    for step in 0..cfg.steps {
        let xr = x.detach().set_requires_grad(true);
        let diff = model.representation(&xr)? - &goal;
        // Each image's loss only depends on its own pixels, so one backward pass serves all.
        let loss = diff.norm_scalaropt_dim(2, [1], false).sum(Kind::Float);
        let grad = crate::grad::grad_or_zero(&loss, &xr)?;
        let norm = grad
            .view([n, -1])
            .norm_scalaropt_dim(2, [1], true)
            .clamp_min(1e-12)
            .view([n, 1, 1, 1]);
        x = tch::no_grad(|| (xr.detach() - grad / norm * cfg.step_size).clamp(0.0, 1.0));
        progress(step + 1, cfg.steps);
    }
    Ok(x)
}
