//! Mixed-precision training: autocast on CUDA (half-precision matmuls and convolutions) with
//! dynamic loss scaling, so small gradients survive fp16 and a step that overflowed is skipped.

use crate::sgd::Sgd;
use crate::train_state::ScalerState;
use crate::Result;
use tch::{Device, Tensor};

pub use crate::precision::{bf16_supported, cpu_flags_have_bf16, Precision};

/// Initial loss scale (2^16), as PyTorch's GradScaler.
pub const INITIAL_SCALE: f64 = 65536.0;
/// Finite steps after which the scale doubles.
pub const GROWTH_INTERVAL: usize = 2000;

/// Dynamic loss scaling over a set of parameters. Scales are powers of two, so scaling and
/// unscaling are exact in fp32: with autocast off, a scaled step equals a plain one bit for bit.
#[derive(Debug)]
pub struct LossScaler {
    params: Vec<Tensor>,
    pub scale: f64,
    good_steps: usize,
    /// Steps skipped because a gradient overflowed.
    pub skipped: usize,
}

impl LossScaler {
    pub fn new(params: Vec<Tensor>) -> Self {
        LossScaler {
            params,
            scale: INITIAL_SCALE,
            good_steps: 0,
            skipped: 0,
        }
    }

    /// Back-propagates `loss × scale`, unscales the gradients and steps the optimiser unless one of
    /// them is not finite (then the scale halves and the step is skipped). Returns whether it stepped.
    /// Its scale and counters, for a checkpoint.
    pub fn state(&self) -> ScalerState {
        ScalerState {
            scale: self.scale,
            good_steps: self.good_steps,
            skipped: self.skipped,
        }
    }

    /// Continues from a checkpoint's state.
    pub fn restore(&mut self, s: &ScalerState) {
        self.scale = s.scale;
        self.good_steps = s.good_steps;
        self.skipped = s.skipped;
    }

    pub fn backward_step(&mut self, opt: &mut Sgd, loss: &Tensor) -> Result<bool> {
        opt.zero_grad();
        (loss * self.scale).f_backward()?;
        let finite = tch::no_grad(|| -> Result<bool> {
            let mut checks = Vec::with_capacity(self.params.len());
            for p in &self.params {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.f_mul_scalar_(1.0 / self.scale)?;
                    checks.push(g.f_isfinite()?.f_all()?);
                }
            }
            Ok(checks.is_empty() || Tensor::f_stack(&checks, 0)?.f_all()?.int64_value(&[]) != 0)
        })?;
        if finite {
            opt.step()?;
            self.good_steps += 1;
            if self.good_steps == GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            opt.zero_grad();
            self.scale /= 2.0;
            self.good_steps = 0;
            self.skipped += 1;
        }
        Ok(finite)
    }
}

/// The model's logits for `x` in `precision` (float32 either way). bf16 is the model's own
/// arithmetic (`Model::set_precision`), so only fp16 autocast is decided here.
pub fn logits_in(model: &crate::model::Model, x: &Tensor, precision: Precision) -> Result<Tensor> {
    let half = precision == Precision::Fp16;
    let logits = autocast(half, model.device(), || model.logits(x))?;
    Ok(match half {
        true => logits.to_kind(tch::Kind::Float),
        false => logits,
    })
}

/// Runs `f` under CUDA autocast when `enabled` and the device is a GPU (a no-op elsewhere).
pub fn autocast<T>(enabled: bool, device: Device, f: impl FnOnce() -> T) -> T {
    tch::autocast(enabled && device.is_cuda(), f)
}
