//! The global-average-pooling CNN: three 3×3 convolutions without BatchNorm, averaged over space
//! into one linear layer (an architecture unlike the small CNN, whose head sees every position).

use tch::nn::{self, ModuleT};
use tch::Kind;

/// conv(16) → pool → conv(32) → pool → conv(64) → mean over space → fc(classes). Input (C, H, W)
/// with H, W ≥ 4. About 1.9 M multiply-adds per 28×28 image. Returned as (body, head): the body
/// ends with the last convolution (Grad-CAM's layer).
pub fn gap_cnn(p: &nn::Path, channels: i64, classes: i64) -> (impl ModuleT, impl ModuleT) {
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let body = nn::seq_t()
        .add(nn::conv2d(p / "conv1", channels, 16, 3, cfg))
        .add_fn(|x| x.relu().max_pool2d_default(2))
        .add(nn::conv2d(p / "conv2", 16, 32, 3, cfg))
        .add_fn(|x| x.relu().max_pool2d_default(2))
        .add(nn::conv2d(p / "conv3", 32, 64, 3, cfg))
        .add_fn(|x| x.relu());
    let head = nn::seq_t()
        .add_fn(|x| x.mean_dim([2i64, 3].as_slice(), false, Kind::Float))
        .add(nn::linear(p / "fc", 64, classes, Default::default()));
    (body, head)
}
