//! The small CNN: two 3×3 conv + max-pool stages and two linear layers, fast on a CPU.

use tch::nn::{self, ModuleT};

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
        .add(nn::conv2d(p / "conv1", c, 16, 3, cfg))
        .add_fn(|x| x.relu().max_pool2d_default(2))
        .add(nn::conv2d(p / "conv2", 16, 32, 3, cfg))
        .add_fn(|x| x.relu());
    let head = nn::seq_t()
        .add_fn(|x| x.max_pool2d_default(2).flatten(1, -1))
        .add(nn::linear(p / "fc1", flat, 128, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc2", 128, classes, Default::default()));
    (body, head)
}
