//! The small CNN: two 3×3 conv + max-pool stages and two linear layers, fast on a CPU.

use tch::nn::{self, ModuleT};

/// conv(32) → pool → conv(64) → pool → fc(128) → fc(classes). Input (C, H, W) with H, W ≥ 4.
pub fn small_cnn(p: &nn::Path, shape: [i64; 3], classes: i64) -> impl ModuleT {
    let [c, h, w] = shape;
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let flat = 64 * (h / 4) * (w / 4);
    nn::seq_t()
        .add(nn::conv2d(p / "conv1", c, 32, 3, cfg))
        .add_fn(|x| x.relu().max_pool2d_default(2))
        .add(nn::conv2d(p / "conv2", 32, 64, 3, cfg))
        .add_fn(|x| x.relu().max_pool2d_default(2).flatten(1, -1))
        .add(nn::linear(p / "fc1", flat, 128, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(p / "fc2", 128, classes, Default::default()))
}
