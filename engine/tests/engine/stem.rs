//! The hand-differentiated first layer agrees with libtorch's convolution and autograd.

use crate::common;
use iscp_engine::model::{Arch, Model, ModelMeta, Normalize, Stem};
use tch::{nn, Device, Kind, Tensor};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn scale(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[]).max(1.0)
}

#[test]
fn stem_convolution_and_input_gradient_match_libtorch() {
    let _rng = common::torch_rng();
    tch::manual_seed(11);
    for c in [1i64, 3] {
        let weight = Tensor::randn([16, c, 3, 3], (Kind::Float, Device::Cpu));
        let bias = Tensor::randn([16], (Kind::Float, Device::Cpu));
        let stem = Stem::new(
            weight.shallow_clone(),
            bias.shallow_clone(),
            Box::new(nn::func_t(|x, _| x.shallow_clone())),
        );
        let x = Tensor::rand([5, c, 12, 10], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let want = x.conv2d(&weight, Some(&bias), [1, 1], [1, 1], [1, 1], 1);
        let got = stem.conv(&x);
        assert_eq!(got.size(), want.size());
        assert!(
            max_diff(&got, &want) < 1e-5 * scale(&want),
            "forward, C={c}"
        );
        // Channels-last strides: the channel dimension is the innermost one.
        assert_eq!(got.stride()[1], 1, "C={c}");
        let g = Tensor::randn(want.size(), (Kind::Float, Device::Cpu));
        let auto =
            Tensor::run_backward(&[(&want * &g).sum(Kind::Float)], &[&x], false, false).remove(0);
        let hand = stem.input_grad(&g);
        assert_eq!(hand.size(), x.size());
        assert!(
            max_diff(&hand, &auto) < 1e-5 * scale(&auto),
            "input grad, C={c}"
        );
        // A gradient with NCHW strides gives the same answer.
        let hand_nchw = stem.input_grad(&g.contiguous());
        assert!(max_diff(&hand_nchw, &auto) < 1e-5 * scale(&auto));
    }
}

#[test]
fn model_stem_pass_matches_autograd_through_the_whole_network() {
    let _rng = common::torch_rng();
    for normalize in [
        None,
        Some(Normalize {
            mean: vec![0.3],
            std: vec![0.25],
        }),
    ] {
        tch::manual_seed(5);
        let meta = ModelMeta {
            arch: Arch::SmallCnn,
            class_names: (0..4).map(|i| i.to_string()).collect(),
            input_shape: [1, 16, 16],
            normalize,
            test_accuracy: None,
        };
        let mut model = Model::new_builtin(meta, Device::Cpu).unwrap();
        model.freeze();
        let x = Tensor::rand([6, 1, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let targets = Tensor::from_slice(&[0i64, 1, 2, 3, 0, 1]);
        let logits = model.logits(&x).unwrap();
        let loss = logits.cross_entropy_for_logits(&targets);
        let auto = Tensor::run_backward(&[&loss], &[&x], false, false).remove(0);

        let pass = model
            .stem_pass(&x.detach())
            .expect("the small CNN has a stem on the CPU");
        assert!(max_diff(&pass.logits, &logits) < 1e-4 * scale(&logits));
        let hand = pass
            .input_grad(&pass.logits.cross_entropy_for_logits(&targets))
            .unwrap();
        assert!(
            max_diff(&hand, &auto) < 1e-4 * scale(&auto),
            "hand {} vs autograd {}",
            hand.abs().max().double_value(&[]),
            auto.abs().max().double_value(&[])
        );
        assert!(auto.abs().max().double_value(&[]) > 0.0, "a real gradient");
    }
}
