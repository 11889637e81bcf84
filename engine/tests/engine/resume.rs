//! The hand-written SGD takes libtorch's steps (momentum, weight decay), and a training resumed
//! from a checkpoint (weights, momentum buffers, loss-scaler state) ends where an uninterrupted one
//! does; without the optimiser's state it does not.

use crate::common;

use iscp_engine::model::Model;
use iscp_engine::sgd::Sgd;
use iscp_engine::train::{train_from, TrainConfig, TrainRun};
use iscp_engine::train_state::{load_train_state, save_train_state, OptimState};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

#[test]
fn hand_written_sgd_takes_libtorchs_steps() {
    let _locks = common::lanes_and_rng();
    let make = || {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "fc", 6, 3, Default::default());
        (vs, lin)
    };
    tch::manual_seed(9);
    let x = Tensor::randn([16, 6], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    let loss = |lin: &nn::Linear| nn::Module::forward(lin, &x).cross_entropy_for_logits(&y);
    let (vs_a, lin_a) = make();
    let mut ours = Sgd::new(&vs_a, 0.1, 0.9, 5e-4);
    let (vs_b, lin_b) = make();
    let mut theirs = nn::Sgd {
        momentum: 0.9,
        dampening: 0.0,
        wd: 5e-4,
        nesterov: false,
    }
    .build(&vs_b, 0.1)
    .unwrap();
    for step in 0..20 {
        let lr = 0.1 * (1.0 - step as f64 / 20.0);
        ours.lr = lr;
        theirs.set_lr(lr);
        ours.backward_step(&loss(&lin_a)).unwrap();
        theirs.backward_step(&loss(&lin_b));
    }
    for (a, b) in [
        (&lin_a.ws, &lin_b.ws),
        (lin_a.bs.as_ref().unwrap(), lin_b.bs.as_ref().unwrap()),
    ] {
        assert!(a.allclose(b, 1e-5, 1e-6, false), "{a} vs {b}");
    }
    // It moved: the comparison is not of two untouched models.
    let (_, fresh) = make();
    assert!(!lin_a.ws.allclose(&fresh.ws, 1e-3, 1e-3, false));
}

fn weights(m: &Model) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = m.var_store().unwrap().variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn max_diff(a: &Model, b: &Model) -> f64 {
    weights(a)
        .iter()
        .zip(weights(b))
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

#[test]
fn a_training_resumed_from_its_checkpoint_is_the_training() {
    let _locks = common::lanes_and_rng();
    tch::set_num_threads(2);
    // One channel and seed 0: `SyntheticConfig`'s defaults.
    let data = common::shapes(3, 16, 384, 60, 0);
    let cfg = TrainConfig {
        lr: 0.05,
        mixed_precision: true,
        ..common::training(3, 32)
    };
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("epoch-0.iscpt");
    // Uninterrupted, checkpointing after the first epoch.
    let mut whole = common::fresh_small_cnn(&data.train, 4);
    let run = TrainRun {
        start_epoch: 0,
        resume: None,
        test: None,
        progress: &mut |_, _, _| {},
        epoch_end: &mut |m, optim, e| {
            if e.epoch == 0 {
                assert!(!optim.momentum.is_empty(), "momentum buffers to save");
                save_train_state(m, optim, &ckpt)?;
            }
            Ok(())
        },
    };
    train_from(&mut whole, &data.train, &cfg, run).unwrap();
    // Resumed from that checkpoint, with and without its optimiser state.
    let resumed = |with_state: bool| {
        let (mut m, optim) = load_train_state(&ckpt, Device::Cpu).unwrap();
        let optim = optim.expect("a training checkpoint");
        assert!(optim.scaler.is_some(), "the loss scaler's state is saved");
        let run = TrainRun {
            start_epoch: 1,
            resume: with_state.then_some(optim).or(Some(OptimState::default())),
            test: None,
            progress: &mut |_, _, _| {},
            epoch_end: &mut |_, _, _| Ok(()),
        };
        train_from(&mut m, &data.train, &cfg, run).unwrap();
        m
    };
    let exact = resumed(true);
    let fresh_momentum = resumed(false);
    let d = max_diff(&whole, &exact);
    let lost = max_diff(&whole, &fresh_momentum);
    assert!(d <= 1e-6, "resumed weights differ by {d}");
    assert!(
        lost > 100.0 * d.max(1e-7),
        "without the optimiser state they differ by only {lost}"
    );
}
