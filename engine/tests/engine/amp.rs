//! Mixed precision: loss scaling by powers of two is exact, so on the CPU (no autocast) a scaled
//! training equals a plain one bit for bit; a step whose gradient overflows is skipped and the
//! scale halves.

use crate::common;

use iscp_engine::amp::{LossScaler, INITIAL_SCALE};
use iscp_engine::train::TrainConfig;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn scaled_training_on_the_cpu_equals_plain_training() {
    // Bit for bit only while libtorch's thread count stays put: no lanes may run meanwhile.
    let _locks = common::lanes_and_rng();
    tch::set_num_threads(2);
    let data = common::shapes(3, 16, 240, 60, 4);
    let logits = |mixed_precision: bool| {
        let cfg = TrainConfig {
            mixed_precision,
            ..common::training(2, 32)
        };
        let model = common::small_cnn_trained_on(&data.train, 7, &cfg);
        model.predict_logits(&data.test.images, 64).unwrap()
    };
    let (plain, scaled) = (logits(false), logits(true));
    assert!(plain.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    assert!(
        plain.equal(&scaled),
        "scaled training diverged from plain training"
    );
}

#[test]
fn an_overflowing_step_is_skipped_and_the_scale_halves() {
    let _rng = common::torch_rng();
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var("w", &[2], nn::Init::Const(1.0));
    let mut opt = iscp_engine::sgd::Sgd::new(&vs, 0.1, 0.0, 0.0);
    let mut scaler = LossScaler::new(vs.trainable_variables());
    // Gradient 3e34 × 65536 overflows fp32: skipped, weights untouched.
    let stepped = scaler
        .backward_step(&mut opt, &(&w * 3e34).sum(Kind::Float))
        .unwrap();
    assert!(!stepped);
    assert_eq!(scaler.scale, INITIAL_SCALE / 2.0);
    assert_eq!(scaler.skipped, 1);
    assert!(w.equal(&Tensor::ones([2], (Kind::Float, Device::Cpu))));
    // A normal gradient steps with the unscaled value: w − 0.1 × 2.
    assert!(scaler
        .backward_step(&mut opt, &(&w * 2.0).sum(Kind::Float))
        .unwrap());
    let want = Tensor::full([2], 0.8, (Kind::Float, Device::Cpu));
    assert!(w.allclose(&want, 1e-6, 1e-6, false), "{w}");
}
