//! More searches than the device's memory holds run as several batches, with masks that select
//! the same pixels.
//! (Its own test binary: it sets the process-wide memory override.)

mod common;

use iscp_engine::data::stratified_split;
use iscp_engine::memory::{searches_that_fit, MEMORY_ENV};
use iscp_engine::search::{search_batch, SearchConfig, SearchJob};

#[test]
fn searches_beyond_free_memory_run_in_turn_with_unchanged_masks() {
    let (model, data) = common::trained_small_cnn(4, 5, 1, 1);
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, 4, 0.2, 0);
    let jobs: Vec<SearchJob> = (0..7)
        .map(|i| SearchJob {
            target: i % 4,
            canvas: iscp_engine::canvas::canvas_image(&data.test, i * 3).unwrap(),
            pool: split.non_target(&labels, i % 4),
            cfg: SearchConfig {
                epochs: 1,
                alpha: 0.1 + 0.05 * i as f64,
                seed: i as u64,
                ..Default::default()
            },
        })
        .collect();
    let everything = search_batch(&model, &data.test.images, &jobs, &mut |_, _| {});
    // Room for three searches of 4 images of this model: 7 run as 3 + 3 + 1.
    let per_search = iscp_engine::memory::bytes_per_image(&model.meta) * 4;
    let free = (3.5 * per_search as f64 / iscp_engine::memory::USABLE_SHARE) as u64;
    assert_eq!(searches_that_fit(&model.meta, 4, free), 3);
    std::env::set_var(MEMORY_ENV, free.to_string());
    let mut reports = Vec::new();
    let chunked = search_batch(&model, &data.test.images, &jobs, &mut |s, t| {
        reports.push((s, t))
    });
    std::env::remove_var(MEMORY_ENV);
    assert_eq!(
        reports.last(),
        Some(&(3000, 3000)),
        "three batches, progress per mille"
    );
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));
    for (i, (a, b)) in everything.iter().zip(&chunked).enumerate() {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        common::assert_masks_agree(
            &model,
            &data.test,
            &jobs[i],
            &a.mask,
            &b.mask,
            &format!("job {i}, one batch vs three"),
        );
    }
}
