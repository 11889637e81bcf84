//! Adversarial training: PGD stays in its ball, and the adversarially trained model's PGD accuracy
//! is clearly above the natural model's.
//! (Its own test binary: PGD's random starts draw from torch's process-wide generator, which tests
//! running beside it in one binary would reseed at random moments; from scratch, adversarial
//! training at this ε collapses to chance for some draws.)

mod common;

use iscp_engine::adversarial::{pgd, robust_accuracy, PgdConfig};
use iscp_engine::train::TrainConfig;

#[test]
fn adversarial_training_buys_robustness() {
    tch::set_num_threads(2);
    let data = common::shapes(4, 16, 1200, 200, 21);
    // A larger ε than CIFAR's 8/255: these shapes are so distinct that 8/255 barely hurts anyone.
    let attack = PgdConfig {
        eps: 0.15,
        step: 0.04,
        steps: 7,
        random_start: true,
    };
    let eval = PgdConfig {
        steps: 20,
        ..attack.clone()
    };
    let mut accs = Vec::new();
    for adversarial in [None, Some(attack.clone())] {
        let cfg = TrainConfig {
            adversarial,
            ..common::training(3, 32)
        };
        let model = common::small_cnn_trained_on(&data.train, 5, &cfg);
        let clean = model
            .accuracy(&data.test.images, &data.test.labels)
            .unwrap();
        let robust = robust_accuracy(&model, &data.test, &eval, 200, 100).unwrap();
        accs.push((clean, robust));
        // The attack never leaves the ε ball or [0,1].
        let x = data.test.images.narrow(0, 0, 16);
        let adv = pgd(&model, &x, &data.test.labels.narrow(0, 0, 16), &eval).unwrap();
        assert!((&adv - &x).abs().max().double_value(&[]) <= eval.eps + 1e-6);
        assert!(adv.min().double_value(&[]) >= 0.0 && adv.max().double_value(&[]) <= 1.0);
    }
    eprintln!(
        "natural (clean, PGD-20): {:?}; adversarial: {:?}",
        accs[0], accs[1]
    );
    assert!(accs[1].1 > accs[0].1 + 0.2, "{accs:?}");
    assert!(
        accs[1].0 > 0.7,
        "adversarial training kept clean accuracy: {accs:?}"
    );
}
