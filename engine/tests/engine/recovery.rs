//! End to end on synthetic data: a BadNets model's 1% white-canvas pattern recovers the trigger and
//! is predictive, a natural model's is not.

use crate::common;

use iscp_engine::badnets::{attack_success_rate, in_trigger, poison, TriggerSpec};
use iscp_engine::canvas::canvas_image;
use iscp_engine::data::stratified_split;
use iscp_engine::pattern::{binarize, pattern_k, Evaluator};
use iscp_engine::search::{search, SearchConfig};
use iscp_engine::train::TrainConfig;

/// 24×24 images: 1% is 6 pixels. A white canvas can only reproduce the checkerboard's 5 white cells
/// (its black cells are not white), so at this size "most of the pattern" means all of them.
const SIDE: i64 = 24;

struct Found {
    in_trigger: usize,
    k: usize,
    pw: f64,
    /// The same search and evaluation with the model in bfloat16 (poisoned model only).
    bf16: Option<(usize, f64)>,
}

fn train_and_search(poisoned: bool) -> Found {
    tch::set_num_threads(2);
    let data = common::shapes(5, SIDE as usize, 2000, 600, 11);
    let target = 0;
    let trigger = TriggerSpec::default().place([1, SIDE, SIDE]).unwrap();
    let train_set = if poisoned {
        poison(&data.train, target, 0.1, 1, &trigger).unwrap().0
    } else {
        data.train
    };
    let tc = TrainConfig {
        lr: 0.05,
        ..common::training(3, 64)
    };
    let model = common::small_cnn_trained_on(&train_set, 3, &tc);
    let acc = model
        .accuracy(&data.test.images, &data.test.labels)
        .unwrap();
    assert!(acc > 0.9, "clean accuracy {acc}");
    if poisoned {
        let asr = attack_success_rate(&model, &data.test, target, &trigger).unwrap();
        assert!(asr > 0.9, "attack success rate {asr}");
    }
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, 5, 0.2, 0);
    let pool = data.test.subset(&split.non_target(&labels, target)).images;
    let canvas = canvas_image(&data.test, -1).unwrap();
    let k = pattern_k(0.01, (SIDE * SIDE) as usize);
    // Clean logits stay float32, as a run computes them before converting the model.
    let logits = model.predict_logits(&data.test.images, 512).unwrap();
    let found = |model: &iscp_engine::model::Model| {
        let out = search(
            model,
            &canvas,
            &pool,
            target,
            &SearchConfig::default(),
            &mut |_, _| {},
        )
        .unwrap();
        let bin = binarize(&out.mask, k);
        let in_trig = bin
            .iter()
            .enumerate()
            .filter(|(i, &v)| v == 1.0 && in_trigger(*i, SIDE, SIDE))
            .count();
        let ev = Evaluator::new(model, &data.test, &logits, &split.search)
            .evaluate(target, &canvas, &bin)
            .unwrap();
        (in_trig, ev.pw)
    };
    let (in_trigger, pw) = found(&model);
    let mut model = model;
    // bf16 whatever this CPU has: libtorch emulates it where the instructions are missing.
    let bf16 = poisoned.then(|| {
        model.set_compute_kind(tch::Kind::BFloat16);
        found(&model)
    });
    Found {
        in_trigger,
        k,
        pw,
        bf16,
    }
}

#[test]
fn badnets_trigger_is_recovered_and_natural_patterns_are_weak() {
    let _locks = common::lanes_and_rng();
    let bad = train_and_search(true);
    eprintln!(
        "badnets: {}/{} pixels in trigger, PW {:.3}",
        bad.in_trigger, bad.k, bad.pw
    );
    assert!(
        bad.in_trigger * 2 > bad.k,
        "only {} of {} pixels in the trigger",
        bad.in_trigger,
        bad.k
    );
    assert!(bad.pw >= 0.9, "BadNets 1% PW {}", bad.pw);
    // In bfloat16 (the model's passes; mask, update and losses in float32) the same trigger.
    let (in_trig, pw) = bad.bf16.expect("searched in bf16");
    eprintln!(
        "badnets in bf16: {in_trig}/{} pixels in trigger, PW {pw:.3}",
        bad.k
    );
    assert!(
        in_trig * 2 > bad.k,
        "bf16: only {in_trig} of {} pixels in the trigger",
        bad.k
    );
    assert!(
        (pw - bad.pw).abs() <= 0.05,
        "bf16 PW {pw} against fp32 {}",
        bad.pw
    );
    let nat = train_and_search(false);
    eprintln!(
        "natural: {}/{} pixels in trigger, PW {:.3}",
        nat.in_trigger, nat.k, nat.pw
    );
    assert!(nat.pw < 0.5, "natural 1% PW {}", nat.pw);
}
