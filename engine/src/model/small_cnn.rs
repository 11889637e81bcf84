//! The small CNN: two 3×3 conv + max-pool stages and two linear layers, fast on a CPU.

use super::stem::Stem;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// 2×2 max-pooling on a channels-last copy: libtorch's CPU kernel is vectorised over channels there
/// and about 4× faster than on NCHW for these shapes (the values are the same; tch has no memory-format
/// argument, so the layout comes from a permuted contiguous copy).
fn pool(x: &Tensor) -> Tensor {
    channels_last(x).max_pool2d_default(2)
}

/// The same values with channels-last strides on the CPU (a no-op elsewhere).
fn channels_last(x: &Tensor) -> Tensor {
    if x.device() != tch::Device::Cpu {
        return x.shallow_clone();
    }
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// 2×2 max-pooling then ReLU: the same values and gradients as ReLU then pooling (both are monotone,
/// ReLU passes no gradient at or below 0 either way), but ReLU and its backward run on a quarter of
/// the elements. Pooling runs on the channels-last copy so that both backward passes see one layout.
fn pool_relu(x: &Tensor) -> Tensor {
    pool(x).relu()
}

/// A 3×3 convolution (stride 1, padding 1) as a function of shared handles to its variables, so
/// that two paths through the network can use it (training updates the variables in place).
fn conv3x3(conv: &nn::Conv2D) -> impl Fn(&Tensor) -> Tensor + Send + 'static {
    let w = conv.ws.shallow_clone();
    let b = conv.bs.as_ref().map(|b| b.shallow_clone());
    move |x| x.conv2d(&w, b.as_ref(), [1, 1], [1, 1], [1, 1], 1)
}

/// conv(16) → pool → conv(32) → pool → fc(128) → fc(classes). Input (C, H, W) with H, W ≥ 4.
/// About 1.2 M multiply-adds per 28×28 image: searches and evaluations stay fast on a CPU.
/// Returned as (body, head, stem): the body ends with the last convolution (Grad-CAM's layer); the
/// stem is the first convolution with the rest of the body, for hand-computed input gradients.
pub fn small_cnn(
    p: &nn::Path,
    shape: [i64; 3],
    classes: i64,
) -> (impl ModuleT, impl ModuleT, Stem) {
    let [c, h, w] = shape;
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let flat = 32 * (h / 4) * (w / 4);
    let conv1 = nn::conv2d(p / "conv1", c, 16, 3, cfg);
    let conv2 = nn::conv2d(p / "conv2", 16, 32, 3, cfg);
    let after_stem = || {
        let conv2 = conv3x3(&conv2);
        nn::func_t(move |x, _| conv2(&pool_relu(x)).relu())
    };
    let stem = Stem::new(
        conv1.ws.shallow_clone(),
        conv1.bs.as_ref().expect("conv1 has a bias").shallow_clone(),
        Box::new(after_stem()),
    );
    let first = conv3x3(&conv1);
    let rest = after_stem();
    // Channels-last from the input on: oneDNN then keeps every activation in that layout and no
    // large layout copy is made forwards or backwards.
    let body = nn::func_t(move |x, train| rest.forward_t(&first(&channels_last(x)), train));
    let fc1 = nn::linear(p / "fc1", flat, 128, Default::default());
    let (w1, b1) = (
        fc1.ws.shallow_clone(),
        fc1.bs.as_ref().map(|b| b.shallow_clone()),
    );
    let head = nn::seq_t()
        .add_fn(move |x| {
            // Flattened in the pooled map's channels-last order, with fc1's weight permuted to
            // match (stored in the usual C, H, W order): no layout copy of the activations
            // forwards, none of their gradient backwards.
            let a = pool(x);
            let s = a.size();
            let w = w1
                .view([-1, s[1], s[2], s[3]])
                .permute([0, 2, 3, 1])
                .reshape([-1, s[1] * s[2] * s[3]]);
            a.permute([0, 2, 3, 1])
                .flatten(1, -1)
                .linear(&w, b1.as_ref())
        })
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc2", 128, classes, Default::default()));
    (body, head, stem)
}
