//! Model artifacts round-trip exactly; ResNet-18 trains a step; bad TorchScript files are clear errors.

use crate::common;
use iscp_engine::data::{synthetic, SyntheticConfig};
use iscp_engine::model::{
    load_artifact, save_artifact, sha256_file, Arch, Model, ModelMeta, Normalize,
};
use iscp_engine::train::{train, TrainConfig};
use tch::Device;

fn meta(arch: Arch, shape: [i64; 3]) -> ModelMeta {
    ModelMeta {
        arch,
        class_names: (0..3).map(|i| i.to_string()).collect(),
        input_shape: shape,
        normalize: Some(Normalize {
            mean: vec![0.5; shape[0] as usize],
            std: vec![0.25; shape[0] as usize],
        }),
        test_accuracy: Some(0.5),
    }
}

#[test]
fn artifacts_round_trip_for_every_architecture() {
    let _rng = common::torch_rng();
    let data = synthetic(&SyntheticConfig {
        classes: 3,
        size: 8,
        channels: 3,
        train: 24,
        test: 6,
        seed: 2,
    })
    .unwrap();
    for arch in [
        Arch::SmallCnn,
        Arch::GapCnn,
        Arch::ResnetSmall,
        Arch::Resnet18,
        Arch::Resnet50,
    ] {
        tch::manual_seed(0);
        let mut model = Model::new_builtin(meta(arch, [3, 8, 8]), Device::Cpu).unwrap();
        let cfg = TrainConfig {
            epochs: 1,
            batch: 8,
            augment: true,
            ..Default::default()
        };
        let stats = train(&mut model, &data.train, &cfg, &mut |_, _, _| {}).unwrap();
        assert_eq!(stats.len(), 1);
        assert!(stats[0].loss.is_finite());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.iscpm");
        let sha = save_artifact(&model, &path).unwrap();
        assert_eq!(sha, sha256_file(&path).unwrap());
        let loaded = load_artifact(&path, Device::Cpu).unwrap();
        assert_eq!(loaded.meta, model.meta);
        let a = model.predict_logits(&data.test.images, 4).unwrap();
        let b = loaded.predict_logits(&data.test.images, 4).unwrap();
        assert_eq!(a.size(), [6, 3]);
        assert!(
            a.allclose(&b, 1e-6, 1e-6, false),
            "{arch:?} logits differ after reload"
        );
    }
}

#[test]
fn bad_model_files_are_clear_errors() {
    let _rng = common::torch_rng();
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"not a model").unwrap();
    let e = Model::load_torchscript(&junk, meta(Arch::Torchscript, [1, 8, 8]), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("junk.pt") && e.contains("TorchScript"), "{e}");
    let e = load_artifact(&junk, Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("not an iscp model artifact"), "{e}");
    let e = Model::load_torchscript(
        &dir.path().join("missing.pt"),
        meta(Arch::Torchscript, [1, 8, 8]),
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not found"), "{e}");
}
