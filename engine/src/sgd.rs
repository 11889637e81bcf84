//! SGD with momentum and weight decay written out (PyTorch's update, dampening 0, not Nesterov),
//! so that its momentum buffers can be saved with a checkpoint and a resumed training is the
//! training: libtorch's optimiser behind `tch::nn::Sgd` does not expose them.

use crate::{EngineError, Result};
use tch::{nn, Tensor};

pub struct Sgd {
    /// Trainable parameters by name, in name order.
    params: Vec<(String, Tensor)>,
    /// One buffer per parameter once it has taken a step.
    momentum_buffers: Vec<Option<Tensor>>,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Sgd {
    /// Over the trainable variables of `vs`.
    pub fn new(vs: &nn::VarStore, lr: f64, momentum: f64, weight_decay: f64) -> Sgd {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let momentum_buffers = params.iter().map(|_| None).collect();
        Sgd {
            params,
            momentum_buffers,
            lr,
            momentum,
            weight_decay,
        }
    }

    /// The parameters it updates.
    pub fn params(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, t)| t.shallow_clone()).collect()
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update from the current gradients: d = g + wd·p; buf = d on the first step, else
    /// momentum·buf + d; p −= lr·buf.
    pub fn step(&mut self) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for ((_, p), buf) in self.params.iter_mut().zip(&mut self.momentum_buffers) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let d = if self.weight_decay != 0.0 {
                    g.f_add(&p.f_mul_scalar(self.weight_decay)?)?
                } else {
                    g
                };
                let d = if self.momentum != 0.0 {
                    match buf {
                        Some(b) => {
                            let _ = b.f_mul_scalar_(self.momentum)?.f_add_(&d)?;
                        }
                        None => *buf = Some(d.f_detach_copy()?),
                    }
                    buf.as_ref().expect("set").shallow_clone()
                } else {
                    d
                };
                let _ = p.f_sub_(&d.f_mul_scalar(self.lr)?)?;
            }
            Ok(())
        })
    }

    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.zero_grad();
        loss.f_backward()?;
        self.step()
    }

    /// The momentum buffers by parameter name (parameters that took no step yet have none).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.momentum_buffers)
            .filter_map(|((name, _), b)| b.as_ref().map(|b| (name.clone(), b.shallow_clone())))
            .collect()
    }

    /// Restores buffers saved by `state` (moved to each parameter's device); every name must be
    /// one of its parameters, with its shape.
    pub fn load_state(&mut self, saved: Vec<(String, Tensor)>) -> Result<()> {
        for (name, t) in saved {
            let Some(i) = self.params.iter().position(|(n, _)| *n == name) else {
                return Err(EngineError::Invalid(format!(
                    "optimiser state names `{name}`, which the model does not have"
                )));
            };
            let p = &self.params[i].1;
            if t.size() != p.size() {
                return Err(EngineError::Invalid(format!(
                    "optimiser state for `{name}` has shape {:?}, the parameter {:?}",
                    t.size(),
                    p.size()
                )));
            }
            self.momentum_buffers[i] = Some(t.f_to_device(p.device())?);
        }
        Ok(())
    }
}
