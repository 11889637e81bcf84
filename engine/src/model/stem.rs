//! A first 3×3 convolution whose input gradient is computed by hand: libtorch's CPU kernels are slow
//! for a convolution with one (or three) input channels, and searches need exactly that gradient.
//!
//! A search differentiates its loss with respect to the input only. On the CPU, oneDNN's
//! backward-data pass of a 1-channel first layer took most of a batched search step, and its
//! forward pass wrote NCHW activations that then had to be copied to channels-last. Here the forward
//! pass is one matrix product over 3×3 patches that lands in channels-last order directly, the rest
//! of the network is differentiated by autograd up to the stem's output, and the input gradient is
//! one matrix product followed by nine shifted sums.

use tch::nn::ModuleT;
use tch::{Kind, Tensor};

/// The first layer (a 3×3 convolution, stride 1, padding 1) and the rest of the body after it.
pub struct Stem {
    /// O×C×3×3, shared with the model's variable store.
    weight: Tensor,
    /// O
    bias: Tensor,
    /// From the stem's output to the body's output (the Grad-CAM layer).
    rest: Box<dyn ModuleT>,
}

/// One forward pass through a stem: the logits, and what the input gradient needs.
pub struct StemPass<'a> {
    pub logits: Tensor,
    /// The stem's output as a leaf that requires grad: autograd stops here.
    out: Tensor,
    stem: &'a Stem,
    /// The model's normalisation std (the stem sees (x − mean)/std).
    std: Option<Tensor>,
}

impl Stem {
    pub fn new(weight: Tensor, bias: Tensor, rest: Box<dyn ModuleT>) -> Stem {
        Stem { weight, bias, rest }
    }

    /// The convolution of `x` (N×C×H×W), without autograd, with channels-last strides.
    pub fn conv(&self, x: &Tensor) -> Tensor {
        let [n, c, h, w] = dims(x);
        let o = self.weight.size()[0];
        tch::no_grad(|| {
            let padded = x.constant_pad_nd([1i64, 1, 1, 1]);
            // N×H×W×C×9 patches: one view gives the patch matrix, row (n, y, x), column c·9 + k.
            let patches: Vec<Tensor> = (0..3)
                .flat_map(|ky| (0..3).map(move |kx| (ky, kx)))
                .map(|(ky, kx)| {
                    padded
                        .narrow(2, ky, h)
                        .narrow(3, kx, w)
                        .permute([0, 2, 3, 1])
                })
                .collect();
            let cols = Tensor::stack(&patches, 4).view([n * h * w, c * 9]);
            // (N·H·W)×O is N×H×W×O: channels-last output without a layout copy.
            self.bias
                .addmm(&cols, &self.weight.view([o, c * 9]).tr())
                .view([n, h, w, o])
                .permute([0, 3, 1, 2])
        })
    }

    /// The gradient with respect to the stem's input of a loss whose gradient with respect to the
    /// stem's output is `grad` (N×O×H×W), in float32 (summed in float32 when the parameters are
    /// bfloat16).
    pub fn input_grad(&self, grad: &Tensor) -> Tensor {
        let [n, o, h, w] = dims(grad);
        let c = self.weight.size()[1];
        tch::no_grad(|| {
            let g = grad.permute([0, 2, 3, 1]).reshape([n * h * w, o]);
            // (C·9)×(N·H·W): for every input channel and kernel offset, the output gradient mixed
            // over the output channels.
            let planes = self
                .weight
                .view([o, c * 9])
                .tr()
                .mm(&g.tr())
                .view([c, 3, 3, n, h, w]);
            let padded = Tensor::zeros([c, n, h + 2, w + 2], (Kind::Float, grad.device()));
            for ky in 0..3 {
                for kx in 0..3 {
                    let mut window = padded.narrow(2, ky, h).narrow(3, kx, w);
                    window += planes.select(1, ky).select(1, kx);
                }
            }
            padded
                .narrow(2, 1, h)
                .narrow(3, 1, w)
                .permute([1, 0, 2, 3])
                .contiguous()
        })
    }

    /// The body's output from the stem's output (eval mode).
    pub fn rest(&self, out: &Tensor) -> Tensor {
        self.rest.forward_t(out, false)
    }

    /// Runs `x` (already normalised by `std`, if any, and in the parameters' kind) through the stem
    /// by hand and the rest of the network (`head` after the body) with autograd from the stem's
    /// output on. The logits are float32 whatever the parameters' kind.
    pub fn pass(&self, x: &Tensor, head: &dyn ModuleT, std: Option<Tensor>) -> StemPass<'_> {
        let out = self.conv(x).set_requires_grad(true);
        let logits = head.forward_t(&self.rest(&out), false).to_kind(Kind::Float);
        StemPass {
            logits,
            out,
            stem: self,
            std,
        }
    }
}

impl StemPass<'_> {
    /// The gradient of `loss` (a scalar built from `logits`) with respect to the model's input
    /// (before normalisation).
    pub fn input_grad(&self, loss: &Tensor) -> tch::Result<Tensor> {
        let g = crate::grad::grad_or_zero(loss, &self.out)?;
        let grad = self.stem.input_grad(&g);
        Ok(match &self.std {
            Some(std) => grad / std,
            None => grad,
        })
    }
}

fn dims(x: &Tensor) -> [i64; 4] {
    let s = x.size();
    [s[0], s[1], s[2], s[3]]
}
