//! D_R / D_NR construction: rebuilt images end closer to their targets in the model's
//! representation than where they started, and stay valid images.

use crate::common;

use iscp_engine::robust_data::{invert_representations, representation_distance, InversionConfig};
use tch::Tensor;

#[test]
fn inverted_images_move_towards_their_targets_in_representation() {
    let _rng = common::torch_rng();
    let (model, data) = common::trained_small_cnn(3, 5, 1, 1);
    let idx = Tensor::from_slice(&[0i64, 25, 50, 75, 100, 125, 150, 175]);
    let targets = data.test.images.index_select(0, &idx);
    // Each image starts from another test image (the next one in the list).
    let starts = targets.roll([1], [0]);
    let before = representation_distance(&model, &starts, &targets).unwrap();
    let cfg = InversionConfig {
        steps: 60,
        step_size: 0.1,
    };
    let mut calls = 0;
    let rebuilt =
        invert_representations(&model, &targets, &starts, &cfg, &mut |_, _| calls += 1).unwrap();
    assert_eq!(calls, 60);
    assert_eq!(rebuilt.size(), targets.size());
    let lo = rebuilt.min().double_value(&[]);
    let hi = rebuilt.max().double_value(&[]);
    assert!(
        (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi),
        "{lo}..{hi}"
    );
    let after = representation_distance(&model, &rebuilt, &targets).unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert!(b > &0.0, "start and target differ");
        assert!(a < &(0.5 * b), "distance {b} only fell to {a}");
    }
}
