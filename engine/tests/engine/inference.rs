//! A TorchScript model's frozen inference copy: made on load, used for passes without gradients,
//! in agreement with the scripted module; refused for a module that changes as it runs.

use crate::common;
use iscp_engine::model::{Arch, InferenceForm, Model, ModelMeta, Normalize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Writes the repository's TorchScript fixture (1×16×16 inputs, 3 classes) of `mode`.
fn fixture(dir: &Path, mode: &str) -> PathBuf {
    let python = std::env::var("ISCP_TORCH_VENV")
        .map(|v| format!("{v}/bin/python3"))
        .unwrap_or_else(|_| "python3".into());
    let out = dir.join(format!("{mode}.pt"));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/make_torchscript.py"
    );
    let done = std::process::Command::new(python)
        .arg(script)
        .arg(&out)
        .arg(mode)
        .output()
        .expect("python3 runs");
    assert!(
        done.status.success(),
        "fixture failed (run through `make test`, which sets ISCP_TORCH_VENV): {}",
        String::from_utf8_lossy(&done.stderr)
    );
    out
}

fn meta() -> ModelMeta {
    ModelMeta {
        arch: Arch::Torchscript,
        class_names: (0..3).map(|i| i.to_string()).collect(),
        input_shape: [1, 16, 16],
        normalize: Some(Normalize {
            mean: vec![0.5],
            std: vec![0.25],
        }),
        test_accuracy: None,
    }
}

/// Logits through the inference copy (no gradient) and through the scripted module (an input
/// that needs one), on the same images.
fn both_ways(model: &Model, x: &Tensor) -> (Tensor, Tensor) {
    let copy = tch::no_grad(|| model.logits(x)).unwrap();
    let scripted = model
        .logits(&x.copy().set_requires_grad(true))
        .unwrap()
        .detach();
    (copy, scripted)
}

#[test]
fn a_torchscript_model_evaluates_through_its_frozen_copy_with_the_modules_decisions() {
    let _rng = common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::load_torchscript(&fixture(dir.path(), "normal"), meta(), Device::Cpu)
        .expect("loads");
    assert_eq!(model.inference_form(), Some(Ok(InferenceForm::Optimized)));
    let x = Tensor::rand([256, 1, 16, 16], (Kind::Float, Device::Cpu));
    let (copy, scripted) = both_ways(&model, &x);
    let diff = (&copy - &scripted).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "float32 copy {diff:e} away from the module");
    assert!(copy.argmax(1, false).equal(&scripted.argmax(1, false)));
    // predict_logits (what evaluation calls) goes through the copy and gives the same logits.
    let batched = model.predict_logits(&x, 100).unwrap();
    assert!((&batched - &copy).abs().max().double_value(&[]) < 1e-4);

    // In bfloat16 the searches' module runs in bf16; evaluation on a CPU without AMX keeps the
    // float32 oneDNN copy (faster there than any bf16 form), with AMX a frozen bf16 copy.
    model.set_compute_kind(Kind::BFloat16);
    let (copy16, scripted16) = both_ways(&model, &x);
    assert_eq!(copy16.kind(), Kind::Float, "logits come back in float32");
    assert_eq!(scripted16.kind(), Kind::Float);
    if iscp_engine::precision::cpu_has_amx_bf16() {
        assert_eq!(model.inference_form(), Some(Ok(InferenceForm::Frozen)));
    } else {
        assert_eq!(model.inference_form(), Some(Ok(InferenceForm::Optimized)));
        let diff = (&copy16 - &copy).abs().max().double_value(&[]);
        assert!(
            diff < 1e-4,
            "the float32 copy evaluates: {diff:e} from float32's logits"
        );
    }
    let agree = copy16
        .argmax(1, false)
        .eq_tensor(&scripted.argmax(1, false))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(agree >= 0.9, "bf16 copy agrees with fp32 on {agree}");
    assert!((&copy16 - &scripted16).abs().max().double_value(&[]) < 0.25);
}

#[test]
fn a_module_that_changes_as_it_runs_keeps_running_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load_torchscript(&fixture(dir.path(), "stateful"), meta(), Device::Cpu)
        .expect("loads");
    let why = model
        .inference_form()
        .expect("a TorchScript model")
        .expect_err("no copy of a module whose logits change with every call");
    assert!(why.contains("disagrees"), "{why}");
    // Its no-gradient passes still run (through the scripted module, which counts them).
    let x = Tensor::zeros([2, 1, 16, 16], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| model.logits(&x)).unwrap();
    let b = tch::no_grad(|| model.logits(&x)).unwrap();
    let step = (&b - &a).mean(Kind::Float).double_value(&[]);
    assert!(
        (step - 1.0).abs() < 1e-5,
        "the module's own counter moved by {step}"
    );
}
