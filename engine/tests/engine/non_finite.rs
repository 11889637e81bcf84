//! NaN never passes as a result: clean logits, patched-image logits and searched masks that are
//! not finite are `NonFinite` errors, in a single search and in a batch of them.

use crate::common;

use iscp_engine::data::Dataset;
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::{search_batch, SearchConfig, SearchJob};
use iscp_engine::EngineError;
use tch::{nn, nn::Module, Device, Kind, Tensor};

/// A linear 2-class model on 1×4×4 images whose logits turn NaN (forward and backward) as soon
/// as any pixel exceeds 0.25: finite on the clean images (all 0.2), NaN once a pattern is pasted.
fn nan_when_bright() -> Model {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Const(0.1),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    let lin = nn::linear(vs.root() / "fc", 16, 2, cfg);
    let net = nn::func_t(move |x, _| {
        let flat = x.flatten(1, -1);
        // sqrt(negative) is NaN, and so is its gradient; × 0 keeps clean logits unchanged.
        let guard = (flat.neg() + 0.25).amin([1i64].as_slice(), true).sqrt() * 0.0;
        lin.forward(&flat) + guard
    });
    let meta = common::small_cnn_meta(vec!["a".into(), "b".into()], [1, 4, 4]);
    Model::from_module(vs, Box::new(net), meta).unwrap()
}

fn dim_images() -> Dataset {
    let labels: Vec<i64> = (0..8).map(|i| i % 2).collect();
    Dataset::new(
        Tensor::full([8, 1, 4, 4], 0.2, (Kind::Float, Device::Cpu)),
        Tensor::from_slice(&labels),
        vec!["a".into(), "b".into()],
    )
    .unwrap()
}

#[test]
fn clean_logits_that_are_nan_are_refused() {
    let model = common::linear_model(&[f32::NAN; 32], &[0.0, 0.0], [1, 4, 4]);
    let e = model.predict_logits(&dim_images().images, 3).unwrap_err();
    assert!(matches!(e, EngineError::NonFinite(_)), "{e}");
    assert!(e.to_string().contains("16 NaN and 0 infinite"), "{e}");
    assert!(model
        .accuracy(&dim_images().images, &dim_images().labels)
        .is_err());
}

#[test]
fn a_pattern_that_makes_logits_nan_is_an_error_not_a_pw() {
    let model = nan_when_bright();
    let test = dim_images();
    let logits = model
        .predict_logits(&test.images, 4)
        .expect("clean logits are finite");
    let ev = Evaluator::new(&model, &test, &logits, &[0, 1, 2, 3]);
    let white = Tensor::ones([1, 4, 4], (Kind::Float, Device::Cpu));
    let mut mask = vec![0f32; 16];
    mask[5] = 1.0;
    let e = ev.evaluate(1, &white, &mask).unwrap_err();
    assert!(matches!(e, EngineError::NonFinite(_)), "{e}");
    assert!(e.to_string().contains("class-1 pattern attached"), "{e}");
    assert!(ev.selection_loss(1, &white, &mask).is_err());
}

#[test]
fn searches_whose_gradients_are_nan_fail_instead_of_returning_nan_masks() {
    let _serial = common::lanes_serial();
    let model = nan_when_bright();
    let test = dim_images();
    let jobs: Vec<SearchJob> = (0..3)
        .map(|j| SearchJob {
            target: j % 2,
            canvas: Tensor::ones([1, 4, 4], (Kind::Float, Device::Cpu)),
            pool: (0..8).filter(|i| i % 2 != j % 2).collect(),
            cfg: SearchConfig {
                epochs: 1,
                batch: 2,
                ..Default::default()
            },
        })
        .collect();
    for out in search_batch(&model, &test.images, &jobs, &mut |_, _| {}) {
        let e = out.unwrap_err();
        assert!(matches!(e, EngineError::NonFinite(_)), "{e}");
        assert!(e.to_string().contains("the mask searched for class"), "{e}");
    }
}
