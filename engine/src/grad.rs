//! Gradients through autograd that cannot crash the process. tch's `run_backward` hands libtorch's
//! engine the gradient edge of the loss as it is; a loss without a graph (a model whose outputs
//! ignore its input, as a hostile or broken model file may be) has none, and the engine then
//! dereferences the missing function (SIGSEGV, not an exception). Every input gradient goes
//! through here instead.

use tch::Tensor;

/// The gradients of the scalar `loss` with respect to `inputs` (each of them with
/// `requires_grad`); zeros for an input the loss does not depend on, and for every input when the
/// loss has no graph at all.
pub fn grads_or_zero(loss: &Tensor, inputs: &[&Tensor]) -> tch::Result<Vec<Tensor>> {
    if !loss.requires_grad() {
        return Ok(inputs.iter().map(|i| i.zeros_like()).collect());
    }
    let grads = Tensor::f_run_backward(&[loss], inputs, false, false)?;
    Ok(grads
        .into_iter()
        .zip(inputs)
        .map(|(g, i)| if g.defined() { g } else { i.zeros_like() })
        .collect())
}

/// The gradient of the scalar `loss` with respect to `input` (zeros as in `grads_or_zero`).
pub fn grad_or_zero(loss: &Tensor, input: &Tensor) -> tch::Result<Tensor> {
    Ok(grads_or_zero(loss, &[input])?.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn a_loss_without_a_graph_gives_zeros_instead_of_a_crash() {
        let x = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let constant = Tensor::from(2.0f32);
        assert_eq!(
            grad_or_zero(&constant, &x)
                .unwrap()
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        let y = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let loss = (&x * 3.0).sum(Kind::Float);
        let g = grads_or_zero(&loss, &[&x, &y]).unwrap();
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), vec![3.0; 3]);
        assert_eq!(Vec::<f32>::try_from(&g[1]).unwrap(), vec![0.0; 2]);
    }
}
