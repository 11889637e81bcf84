//! Batched searches agree with the same searches run one by one (same selected pixels at every
//! size, PW within a tolerance: floats differ across batch shapes and CPUs), and a bad job fails
//! alone.

use crate::common;

use iscp_engine::canvas::canvas_image;
use iscp_engine::data::stratified_split;
use iscp_engine::model::Model;
use iscp_engine::search::{search_batch, Objective, SearchConfig, SearchJob};

fn setup() -> (Model, iscp_engine::data::DataSplits) {
    common::trained_small_cnn(4, 5, 1, 1)
}

fn jobs(data: &iscp_engine::data::DataSplits) -> Vec<SearchJob> {
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, 4, 0.2, 0);
    let mut out = Vec::new();
    for (i, (class, canvas, objective, alpha, batch, trim, tv_beta, learn_canvas)) in [
        (0, -1, Objective::Released, 0.2, 4, 0, 0.0, false),
        (1, 5, Objective::Released, 0.3, 4, 7, 0.0, false),
        (2, 10, Objective::Paper, 0.2, 4, 0, 0.0, false),
        (3, -1, Objective::Paper, 0.1, 3, 13, 0.0, false),
        (1, 42, Objective::Released, 0.1, 5, 3, 0.0, false),
        (2, 7, Objective::Released, 0.2, 4, 0, 1.0, false),
        (0, 3, Objective::Released, 0.2, 4, 5, 0.0, true),
        (3, 9, Objective::Paper, 0.2, 4, 0, 0.2, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut pool = split.non_target(&labels, class);
        pool.truncate(pool.len() - trim); // ragged: subsets of different lengths
        out.push(SearchJob {
            target: class,
            canvas: canvas_image(&data.test, canvas).unwrap(),
            pool,
            cfg: SearchConfig {
                objective,
                alpha,
                epochs: 2,
                batch,
                lr: 0.02,
                seed: i as u64,
                tv_beta,
                learn_canvas,
                ..Default::default()
            },
        });
    }
    out
}

#[test]
fn batched_masks_equal_one_by_one() {
    let _locks = common::lanes_and_rng();
    let (model, data) = setup();
    let js = jobs(&data);
    let mut reports = Vec::new();
    let batched = search_batch(&model, &data.test.images, &js, &mut |s, t| {
        reports.push((s, t))
    });
    // On two threads the batch ran in two single-threaded lanes; libtorch's default for threads
    // started afterwards is two again.
    let later = std::thread::spawn(tch::get_num_threads).join().unwrap();
    assert_eq!(later, 2, "libtorch's thread count was not restored");
    let (done, total) = *reports.last().expect("progress was reported");
    assert_eq!(done, total, "progress ends at its total");
    assert!(
        reports.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress never goes back"
    );
    for (i, (job, b)) in js.iter().zip(&batched).enumerate() {
        let alone = search_batch(
            &model,
            &data.test.images,
            std::slice::from_ref(job),
            &mut |_, _| {},
        )
        .remove(0)
        .unwrap();
        let b = b.as_ref().unwrap();
        assert_eq!(alone.steps, b.steps);
        assert_eq!(alone.steps, 2 * job.pool.len().div_ceil(job.cfg.batch));
        common::assert_masks_agree(
            &model,
            &data.test,
            job,
            &alone.mask,
            &b.mask,
            &format!("job {i}, batched vs alone"),
        );
        let loss_gap = (alone.final_loss - b.final_loss).abs();
        assert!(
            loss_gap <= 0.02 * alone.final_loss.abs().max(1.0),
            "job {i}: final loss {} alone, {} batched",
            alone.final_loss,
            b.final_loss
        );
        assert!(
            alone.mask.iter().any(|&v| (v - 0.5).abs() > 0.01),
            "the mask never moved"
        );
    }
}

#[test]
fn a_bad_job_fails_alone() {
    let _locks = common::lanes_and_rng();
    let (model, data) = setup();
    let mut js = jobs(&data);
    js[1].pool.push(10_000); // a row outside the test set
    js[3].target = 9; // a class that does not exist
    let out = search_batch(&model, &data.test.images, &js, &mut |_, _| {});
    assert!(out[1].as_ref().unwrap_err().to_string().contains("10000"));
    assert!(out[3]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("target class 9"));
    for i in [0, 2, 4] {
        let alone = search_batch(
            &model,
            &data.test.images,
            std::slice::from_ref(&js[i]),
            &mut |_, _| {},
        )
        .remove(0)
        .unwrap();
        common::assert_masks_agree(
            &model,
            &data.test,
            &js[i],
            &alone.mask,
            &out[i].as_ref().unwrap().mask,
            &format!("job {i} beside its neighbours' failure"),
        );
    }
}
