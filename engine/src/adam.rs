//! Adam on a plain tensor (the detectors' reversed masks and optimised inputs), outside tch's
//! optimiser, which only steps a var store's variables.

use tch::Tensor;

/// One tensor's Adam state.
pub struct Adam {
    m: Tensor,
    v: Tensor,
    t: i32,
    betas: (f64, f64),
}

impl Adam {
    /// Fresh state for a parameter shaped like `like`.
    pub fn new(like: &Tensor, betas: (f64, f64)) -> Adam {
        Adam {
            m: like.zeros_like(),
            v: like.zeros_like(),
            t: 0,
            betas,
        }
    }

    /// One step of `param` (in place, not requiring grad) down `grad`.
    pub fn step(&mut self, param: &mut Tensor, grad: &Tensor, lr: f64) {
        let (b1, b2) = self.betas;
        self.t += 1;
        self.m = &self.m * b1 + grad * (1.0 - b1);
        self.v = &self.v * b2 + grad.square() * (1.0 - b2);
        let mhat = &self.m / (1.0 - b1.powi(self.t));
        let vhat = &self.v / (1.0 - b2.powi(self.t));
        let update = mhat / (vhat.sqrt() + 1e-8) * lr;
        let _ = param.f_sub_(&update);
    }
}
