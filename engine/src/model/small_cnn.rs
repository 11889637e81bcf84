//! The small CNN: two 3×3 conv + max-pool stages and two linear layers, fast on a CPU.

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

/// ReLU then 2×2 max-pooling, both on the channels-last copy so that their backward passes see one
/// layout (mixed layouts make ReLU's backward several times slower).
fn relu_pool(x: &Tensor) -> Tensor {
    pool(&channels_last(x).relu())
}

/// conv(16) → pool → conv(32) → pool → fc(128) → fc(classes). Input (C, H, W) with H, W ≥ 4.
/// About 1.2 M multiply-adds per 28×28 image: searches and evaluations stay fast on a CPU.
/// Returned as (body, head): the body ends with the last convolution (Grad-CAM's layer).
pub fn small_cnn(p: &nn::Path, shape: [i64; 3], classes: i64) -> (impl ModuleT, impl ModuleT) {
    let [c, h, w] = shape;
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let flat = 32 * (h / 4) * (w / 4);
    let body = nn::seq_t()
        // Channels-last from the input on: oneDNN then keeps every activation in that layout and
        // no large layout copy is made forwards or backwards.
        .add_fn(channels_last)
        .add(nn::conv2d(p / "conv1", c, 16, 3, cfg))
        .add_fn(relu_pool)
        .add(nn::conv2d(p / "conv2", 16, 32, 3, cfg))
        .add_fn(|x| x.relu());
    let head = nn::seq_t()
        .add_fn(|x| pool(x).flatten(1, -1))
        .add(nn::linear(p / "fc1", flat, 128, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc2", 128, classes, Default::default()));
    (body, head)
}
