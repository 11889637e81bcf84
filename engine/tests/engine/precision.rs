//! Reduced precision: a bf16 model's decisions and input gradients stay close to float32's, and a
//! device that lacks the arithmetic asked for falls back to fp32 with a reason.

use crate::common;

use iscp_engine::amp::{cpu_flags_have_bf16, Precision};
use tch::{Device, Kind, Tensor};

fn cosine(a: &Tensor, b: &Tensor) -> f64 {
    let dot = (a * b).sum(Kind::Double).double_value(&[]);
    dot / (a.norm().double_value(&[]) * b.norm().double_value(&[])).max(1e-30)
}

#[test]
fn bf16_passes_keep_decisions_and_input_gradients() {
    let _locks = common::lanes_and_rng();
    tch::set_num_threads(2);
    let data = common::shapes(4, 16, 400, 200, 3);
    let mut model = common::small_cnn_trained_on(&data.train, 5, &common::training(2, 32));
    let x = data.test.images.shallow_clone();
    let targets = Tensor::zeros([x.size()[0]], (Kind::Int64, Device::Cpu));
    // float32: decisions and the stem's hand-made input gradient.
    let fp32 = model.predict_logits(&x, 64).unwrap();
    let grad = |model: &iscp_engine::model::Model| {
        let pass = model
            .stem_pass(&x)
            .expect("the small CNN has a stem on the CPU");
        assert_eq!(pass.logits.kind(), Kind::Float);
        let g = pass
            .input_grad(&pass.logits.cross_entropy_for_logits(&targets))
            .unwrap();
        assert_eq!(g.kind(), Kind::Float);
        g
    };
    let g32 = grad(&model);
    model.set_compute_kind(Kind::BFloat16);
    assert_eq!(model.compute_kind(), Kind::BFloat16);
    let bf16 = model.predict_logits(&x, 64).unwrap();
    assert_eq!(bf16.kind(), Kind::Float, "logits come back in float32");
    let same = fp32
        .argmax(1, false)
        .eq_tensor(&bf16.argmax(1, false))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(same >= 0.95, "bf16 kept {same:.3} of the decisions");
    let g16 = grad(&model);
    let c = cosine(&g32, &g16);
    assert!(c > 0.95, "input gradients' cosine {c:.4}");
    // And autograd through the whole network (no stem) agrees with the stem's gradient.
    let xa = x.detach().set_requires_grad(true);
    let loss = model
        .logits(&xa)
        .unwrap()
        .cross_entropy_for_logits(&targets);
    let auto = Tensor::run_backward(&[&loss], &[&xa], false, false).remove(0);
    let c = cosine(&auto, &g16);
    assert!(c > 0.95, "bf16 stem against bf16 autograd: cosine {c:.4}");
    // Back to float32: the decisions of float32 again (bf16 rounding of the weights aside).
    model.set_compute_kind(Kind::Float);
    assert_eq!(model.predict_logits(&x, 64).unwrap().kind(), Kind::Float);
}

#[test]
fn a_device_without_the_arithmetic_runs_fp32_and_says_why() {
    let (p, why) = Precision::Fp16.on(Device::Cpu);
    assert_eq!(p, Precision::Fp32);
    assert!(why.unwrap().contains("CUDA"));
    assert_eq!(Precision::Fp32.on(Device::Cpu), (Precision::Fp32, None));
    let (p, why) = Precision::Bf16.on(Device::Cpu);
    assert_eq!(p == Precision::Bf16, iscp_engine::amp::bf16_supported());
    assert_eq!(why.is_some(), p == Precision::Fp32);
    let zen4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n";
    let skylake = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw\n";
    let graviton = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n";
    assert!(cpu_flags_have_bf16(zen4));
    assert!(!cpu_flags_have_bf16(skylake));
    assert!(cpu_flags_have_bf16(graviton));
    assert!(!cpu_flags_have_bf16("model name\t: bf16 in a name\n"));
}
