//! CIFAR-style ResNets (18, 50, and a small one for 28×28 images): a 3×3 stem without max-pool,
//! four stages of residual blocks, global average pooling, a linear head.

use tch::nn::{self, ModuleT};
use tch::Tensor;

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(p, i, o, k, cfg)
}

/// The projection shortcut (1×1 conv + batch norm) of a block that changes stride or width;
/// `None` for the identity shortcut.
fn shortcut(p: &nn::Path, i: i64, o: i64, stride: i64) -> Option<(nn::Conv2D, nn::BatchNorm)> {
    (stride != 1 || i != o).then(|| {
        (
            conv(p / "short" / "conv", i, o, 1, stride),
            nn::batch_norm2d(p / "short" / "bn", o, Default::default()),
        )
    })
}

/// A block's output: its residual branch `y` plus the shortcut of its input `x`, then ReLU.
fn join(x: &Tensor, y: Tensor, short: &Option<(nn::Conv2D, nn::BatchNorm)>, train: bool) -> Tensor {
    let s = match short {
        Some((c, b)) => x.apply(c).apply_t(b, train),
        None => x.shallow_clone(),
    };
    (y + s).relu()
}

fn basic_block(p: nn::Path, i: i64, o: i64, stride: i64) -> impl ModuleT {
    let c1 = conv(&p / "conv1", i, o, 3, stride);
    let b1 = nn::batch_norm2d(&p / "bn1", o, Default::default());
    let c2 = conv(&p / "conv2", o, o, 3, 1);
    let b2 = nn::batch_norm2d(&p / "bn2", o, Default::default());
    let short = shortcut(&p, i, o, stride);
    nn::func_t(move |x, train| {
        let y = x
            .apply(&c1)
            .apply_t(&b1, train)
            .relu()
            .apply(&c2)
            .apply_t(&b2, train);
        join(x, y, &short, train)
    })
}

/// ResNet-18 for small images (CIFAR layout): widths 64-128-256-512, two blocks each.
/// Returned as (body, head): the body ends with the last residual stage (Grad-CAM's layer).
pub fn resnet18(p: &nn::Path, channels: i64, classes: i64) -> (impl ModuleT, impl ModuleT) {
    resnet(p, channels, classes, [2, 2, 2, 2], WIDTHS, 1, basic_block)
}

/// A small ResNet for 28×28 images: one basic block per stage, widths 16-32-64-128 (about 12 M
/// multiply-adds per 28×28 image). Returned as (body, head).
pub fn resnet_small(p: &nn::Path, channels: i64, classes: i64) -> (impl ModuleT, impl ModuleT) {
    resnet(
        p,
        channels,
        classes,
        [1, 1, 1, 1],
        [16, 32, 64, 128],
        1,
        basic_block,
    )
}

/// The stage widths of ResNet-18 and -50.
const WIDTHS: [i64; 4] = [64, 128, 256, 512];

/// The CIFAR-layout ResNet skeleton: 3×3 stem (as wide as the first stage, no max-pool), four
/// stages of `depths` blocks of `widths` (× `expansion` out; the first block of stages 2–4 strides
/// 2), global average pool, linear head.
fn resnet<B: ModuleT + 'static>(
    p: &nn::Path,
    channels: i64,
    classes: i64,
    depths: [usize; 4],
    widths: [i64; 4],
    expansion: i64,
    block: fn(nn::Path, i64, i64, i64) -> B,
) -> (impl ModuleT, impl ModuleT) {
    let stem = conv(p / "stem", channels, widths[0], 3, 1);
    let bn = nn::batch_norm2d(p / "stem_bn", widths[0], Default::default());
    let mut layers = nn::seq_t();
    let mut inp = widths[0];
    for (stage, (&width, &n)) in widths.iter().zip(&depths).enumerate() {
        for b in 0..n {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            layers = layers.add(block(
                p / format!("layer{}", stage + 1) / b,
                inp,
                width,
                stride,
            ));
            inp = width * expansion;
        }
    }
    let fc = nn::linear(p / "fc", inp, classes, Default::default());
    let body = nn::func_t(move |x: &Tensor, train| {
        x.apply(&stem)
            .apply_t(&bn, train)
            .relu()
            .apply_t(&layers, train)
    });
    let head =
        nn::func_t(move |x: &Tensor, _| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&fc));
    (body, head)
}

fn bottleneck(p: nn::Path, i: i64, width: i64, stride: i64) -> impl ModuleT {
    let o = width * 4;
    let c1 = conv(&p / "conv1", i, width, 1, 1);
    let b1 = nn::batch_norm2d(&p / "bn1", width, Default::default());
    let c2 = conv(&p / "conv2", width, width, 3, stride);
    let b2 = nn::batch_norm2d(&p / "bn2", width, Default::default());
    let c3 = conv(&p / "conv3", width, o, 1, 1);
    let b3 = nn::batch_norm2d(&p / "bn3", o, Default::default());
    let short = shortcut(&p, i, o, stride);
    nn::func_t(move |x, train| {
        let y = x
            .apply(&c1)
            .apply_t(&b1, train)
            .relu()
            .apply(&c2)
            .apply_t(&b2, train)
            .relu()
            .apply(&c3)
            .apply_t(&b3, train);
        join(x, y, &short, train)
    })
}

/// ResNet-50 for small images (CIFAR layout): bottleneck stages of 3-4-6-3 blocks, widths
/// 64-128-256-512 (×4 out). Returned as (body, head).
pub fn resnet50(p: &nn::Path, channels: i64, classes: i64) -> (impl ModuleT, impl ModuleT) {
    resnet(p, channels, classes, [3, 4, 6, 3], WIDTHS, 4, bottleneck)
}
