//! Predictive power, held-out ratios and the selection loss equal values computed by hand on a fixture.

use crate::common;

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
    let _rng = common::torch_rng();
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

#[test]
fn many_patterns_in_shared_batches_equal_one_at_a_time() {
    let _rng = common::torch_rng();
    let model = threshold_model();
    let n = 23i64;
    tch::manual_seed(11);
    let x = Tensor::rand([n, 1, 2, 2], (tch::Kind::Float, Device::Cpu));
    let labels: Vec<i64> = (0..n).map(|i| i % 2).collect();
    let test = Dataset::new(x, Tensor::from_slice(&labels), vec!["a".into(), "b".into()]).unwrap();
    let logits = model.predict_logits(&test.images, 8).unwrap();
    let search: Vec<i64> = (0..n).filter(|i| i % 3 != 0).collect();
    let canvases: Vec<Tensor> = (0..4)
        .map(|k| {
            Tensor::full(
                [1, 2, 2],
                0.2 * k as f64 + 0.1,
                (tch::Kind::Float, Device::Cpu),
            )
        })
        .collect();
    let masks: Vec<Vec<f32>> = vec![
        vec![1., 0., 0., 0.],
        vec![0., 1., 0., 0.],
        vec![1., 1., 0., 1.],
        vec![0., 0., 0., 0.],
    ];
    let patterns: Vec<(&Tensor, &[f32])> = canvases
        .iter()
        .zip(&masks)
        .map(|(c, m)| (c, m.as_slice()))
        .collect();
    // Batches of 5 (pattern, image) pairs: chunks straddle patterns.
    for batch in [5, 1024] {
        let ev = Evaluator::new(&model, &test, &logits, &search).with_batch(batch);
        for target in [0, 1] {
            let losses = ev.selection_losses(target, &patterns).unwrap();
            let evals = ev.evaluate_many(target, &patterns).unwrap();
            assert!(evals.iter().any(|e| e.pw.is_finite() && e.pw > 0.0));
            for (j, (c, m)) in patterns.iter().enumerate() {
                let alone = ev.selection_loss(target, c, m).unwrap();
                assert!((losses[j] - alone).abs() < 1e-6, "{} vs {alone}", losses[j]);
                let e = ev.evaluate(target, c, m).unwrap();
                // Equal, or both NaN (a held-out class the model never gets right).
                let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
                assert!(same(evals[j].acc_with_pattern, e.acc_with_pattern));
                assert!(same(evals[j].pw_heldout, e.pw_heldout));
                assert!(same(evals[j].pw, e.pw));
                assert!((evals[j].selection_loss - e.selection_loss).abs() < 1e-6);
            }
        }
    }
}
