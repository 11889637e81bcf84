//! The search variants: total variation smooths the mask; a learned canvas moves in signed steps of
//! 2/255 during its phases and stays in [0,1].

use crate::common;

use iscp_engine::canvas::canvas_image;
use iscp_engine::data::stratified_split;
use iscp_engine::model::Model;
use iscp_engine::search::{
    search_batch, total_variation, SearchConfig, SearchJob, CANVAS_LR, CANVAS_PERIOD,
};
use tch::Tensor;

fn setup() -> (Model, iscp_engine::data::DataSplits) {
    common::trained_small_cnn(4, 8, 2, 1)
}

fn job(
    data: &iscp_engine::data::DataSplits,
    canvas: i64,
    tv_beta: f64,
    learn_canvas: bool,
) -> SearchJob {
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, 4, 0.2, 0);
    SearchJob {
        target: 1,
        canvas: canvas_image(&data.test, canvas).unwrap(),
        pool: split.non_target(&labels, 1),
        cfg: SearchConfig {
            tv_beta,
            learn_canvas,
            epochs: 3,
            ..Default::default()
        },
    }
}

fn tv(mask: &[f32]) -> f64 {
    total_variation(&Tensor::from_slice(mask).view([1, 1, 16, 16])).double_value(&[0])
}

#[test]
fn total_variation_lowers_the_masks_variation() {
    let _locks = common::lanes_and_rng();
    let (model, data) = setup();
    let jobs = [
        job(&data, -1, 0.0, false),
        job(&data, -1, 0.2, false),
        job(&data, -1, 1.0, false),
    ];
    let out: Vec<_> = search_batch(&model, &data.test.images, &jobs, &mut |_, _| {})
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let (t0, t1, t2) = (tv(&out[0].mask), tv(&out[1].mask), tv(&out[2].mask));
    eprintln!("TV of the mask: β=0 {t0:.3}, β=0.2 {t1:.3}, β=1 {t2:.3}");
    assert!(t1 < t0 && t2 < t0, "β=0: {t0}, β=0.2: {t1}, β=1: {t2}");
}

#[test]
fn a_learned_canvas_moves_in_bounded_steps() {
    let _locks = common::lanes_and_rng();
    let (model, data) = setup();
    let index = data.test.labels_vec().iter().position(|&l| l == 1).unwrap() as i64;
    let j = job(&data, index, 0.0, true);
    let start: Vec<f32> = Vec::try_from(j.canvas.flatten(0, -1)).unwrap();
    let out = search_batch(&model, &data.test.images, &[j], &mut |_, _| {})
        .remove(0)
        .unwrap();
    let canvas = out.canvas.expect("a learned canvas");
    let canvas_steps = (0..out.steps)
        .filter(|t| (t / CANVAS_PERIOD) % 2 == 1)
        .count() as f32;
    let moved = canvas
        .iter()
        .zip(&start)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(canvas.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(moved > 0.0, "the canvas never moved");
    assert!(
        moved <= canvas_steps * CANVAS_LR as f32 + 1e-5,
        "moved {moved} in {canvas_steps} steps"
    );
}
