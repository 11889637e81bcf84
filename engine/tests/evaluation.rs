//! Predictive power, held-out ratios and the selection loss equal values computed by hand on a fixture.

mod common;

use iscp_engine::data::Dataset;
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use tch::{Device, Tensor};

/// Predicts class 1 exactly when pixel 0 exceeds 0.5: logits = (0.5 − x0, x0 − 0.5).
fn threshold_model() -> Model {
    common::linear_model(&[-1., 0., 0., 0., 1., 0., 0., 0.], &[0.5, -0.5], [1, 2, 2])
}

#[test]
fn predictive_power_is_the_hand_computed_ratio() {
    let model = threshold_model();
    // Six class-0 images (pixel 0: one above 0.5), four class-1 images (three above 0.5).
    let x0 = [0.9f32, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.1];
    let labels = [0i64, 0, 0, 0, 0, 0, 1, 1, 1, 1];
    let px: Vec<f32> = x0.iter().flat_map(|&v| [v, 0.3, 0.3, 0.3]).collect();
    let test = Dataset::new(
        Tensor::from_slice(&px).view([10, 1, 2, 2]),
        Tensor::from_slice(&labels),
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    let logits = model.predict_logits(&test.images, 4).unwrap();
    // Search subset: images 0, 1 (class 0) and 6, 9 (class 1); the rest is held out.
    let ev = Evaluator::new(&model, &test, &logits, &[0, 1, 6, 9]);
    let white = Tensor::ones([1, 2, 2], (tch::Kind::Float, Device::Cpu));

    // Pattern on pixel 1: changes nothing, so only image 0 (x0 = 0.9) is predicted as class 1.
    let e = ev.evaluate(1, &white, &[0., 1., 0., 0.]).unwrap();
    assert!((e.original_class_acc - 3.0 / 4.0).abs() < 1e-12);
    assert!((e.acc_with_pattern - 1.0 / 6.0).abs() < 1e-12);
    assert!((e.pw - (1.0 / 6.0) / (3.0 / 4.0)).abs() < 1e-12);
    // Held out: class-0 images 2–5 (none predicted 1), class-1 images 7, 8 (both correct).
    assert_eq!(e.acc_with_pattern_heldout, 0.0);
    assert_eq!(e.original_class_acc_heldout, 1.0);
    assert_eq!(e.pw_heldout, 0.0);
    // Selection loss over D_n = images 0 and 1: CE towards 1 of logits (−0.4, 0.4) and (0.4, −0.4).
    let ce = |d: f64| (1.0 + (-d).exp()).ln();
    assert!(
        (e.selection_loss - (ce(0.8) + ce(-0.8)) / 2.0).abs() < 1e-6,
        "{}",
        e.selection_loss
    );

    // Pattern on pixel 0 of a white canvas: every non-target image becomes class 1.
    let e = ev.evaluate(1, &white, &[1., 0., 0., 0.]).unwrap();
    assert_eq!(e.acc_with_pattern, 1.0);
    assert!(
        (e.pw - 4.0 / 3.0).abs() < 1e-12,
        "PW can exceed 1: {}",
        e.pw
    );
    assert_eq!(e.pw_heldout, 1.0);
    assert!((e.selection_loss - ce(1.0)).abs() < 1e-6);
}
