//! Neural Cleanse on synthetic data: a BadNets model's target needs by far the smallest mask.

use crate::common;

use iscp_engine::anomaly::{top_k_iou, FLAG_THRESHOLD};
use iscp_engine::badnets::{attack_success_rate, poison, Position, Trigger, TriggerSpec};
use iscp_engine::cleanse::{anomaly_indices, reverse_all, CleanseConfig};
use iscp_engine::train::TrainConfig;

#[test]
fn neural_cleanse_finds_the_badnets_target() {
    let _locks = common::lanes_and_rng();
    tch::set_num_threads(2);
    let side = 24;
    let data = common::shapes(5, side as usize, 2000, 600, 11);
    let target = 3;
    let trigger = TriggerSpec {
        kind: Trigger::WhiteSquare,
        size: 3,
        position: Position::TopLeft,
        seed: 1,
    }
    .place([1, side, side])
    .unwrap();
    let (poisoned, _) = poison(&data.train, target, 0.1, 1, &trigger).unwrap();
    let tc = TrainConfig {
        lr: 0.05,
        ..common::training(3, 64)
    };
    let model = common::small_cnn_trained_on(&poisoned, 3, &tc);
    let asr = attack_success_rate(&model, &data.test, target, &trigger).unwrap();
    assert!(asr > 0.9, "attack success rate {asr}");
    let clean = data.test.images.narrow(0, 0, 200);
    let cfg = CleanseConfig {
        epochs: 40,
        ..Default::default()
    };
    let rev = reverse_all(&model, &clean, &cfg, &mut |_, _| {}).unwrap();
    let norms: Vec<f64> = rev.iter().map(|r| r.norm).collect();
    let index = anomaly_indices(&norms);
    eprintln!("norms {norms:.1?}, indices {index:.2?}");
    let top = (0..index.len())
        .max_by(|&a, &b| index[a].total_cmp(&index[b]))
        .unwrap();
    assert_eq!(top as i64, target, "norms {norms:?}");
    assert!(index[top] > FLAG_THRESHOLD, "index {}", index[top]);
    let iou = top_k_iou(&rev[top].mask, &trigger.pixels());
    eprintln!("trigger IoU {iou:.2}");
    // Nine random cells of 576 would share about 0.01 of the trigger's: 0.1 means the mask found it.
    assert!(iou > 0.1, "IoU {iou}");

    // The original's procedure (rounds of a pass, early stop) names the same target and stops
    // every label before its cap of 300 passes (the progress jumps to the end).
    let cfg = CleanseConfig::original(300, 32, 3);
    let mut jumped = false;
    let mut last = 0;
    let rev = reverse_all(&model, &clean, &cfg, &mut |done, _| {
        jumped |= done > last + 1;
        last = done;
    })
    .unwrap();
    let norms: Vec<f64> = rev.iter().map(|r| r.norm).collect();
    let index = anomaly_indices(&norms);
    eprintln!("original: norms {norms:.1?}, indices {index:.2?}");
    let top = (0..index.len())
        .max_by(|&a, &b| index[a].total_cmp(&index[b]))
        .unwrap();
    assert_eq!(top as i64, target, "norms {norms:?}");
    assert!(jumped, "the early stop never ended the labels");
}
