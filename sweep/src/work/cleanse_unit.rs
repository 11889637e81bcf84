//! The cleanse unit: Neural Cleanse on a setting's model with the clean images the searches use
//! (the stratified search split of the test set), as the model's `neural-cleanse` detection row.

use crate::spec::{CleanseSchedule, SettingSpec};
use crate::tables::{DetectionRow, NEURAL_CLEANSE, NEURAL_CLEANSE_ORIGINAL};
use crate::units::CleanseParams;
use crate::Result;
use iscp_engine::anomaly::{top_k_iou, FLAG_THRESHOLD};
use iscp_engine::cleanse::{anomaly_indices, reverse_all, CleanseConfig};
use iscp_engine::model::Model;
use iscp_engine::rng::mix;
use tch::Tensor;

/// The original's cap on passes over the clean images (its early stop usually ends sooner).
pub const ORIGINAL_EPOCHS: usize = 1000;

/// `n` of the images at rows `clean`, chosen by `seed` (the search split lists its images class by
/// class, so its first `n` would miss classes).
pub fn seeded_choice(images: &Tensor, clean: &[i64], n: usize, seed: u64) -> Tensor {
    let mut chosen = clean.to_vec();
    iscp_engine::rng::Rng::new(seed).shuffle(&mut chosen);
    chosen.truncate(n.min(clean.len()));
    images.index_select(0, &Tensor::from_slice(&chosen).to_device(images.device()))
}

/// The class with the largest index (the first on ties; NaN never wins).
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Runs Neural Cleanse on `model` over `images[clean]` (a seeded `budget.images` of them), at
/// the unit's schedule.
pub fn run_cleanse(
    model: &Model,
    images: &Tensor,
    clean: &[i64],
    setting: &SettingSpec,
    unit_id: &str,
    p: &CleanseParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DetectionRow> {
    let started = std::time::Instant::now();
    let n = p.budget.images.unwrap_or(clean.len());
    let x = seeded_choice(images, clean, n, mix(&[p.seed, 0xB4D6E7]));
    let seed = mix(&[p.seed, 0xC1EA45E]);
    let (cfg, detector) = match p.schedule {
        CleanseSchedule::Short => (
            CleanseConfig {
                epochs: p.budget.epochs,
                batch: p.budget.batch,
                seed,
                ..CleanseConfig::default()
            },
            NEURAL_CLEANSE,
        ),
        CleanseSchedule::Original => (
            CleanseConfig::original(ORIGINAL_EPOCHS, p.budget.batch, seed),
            NEURAL_CLEANSE_ORIGINAL,
        ),
    };
    let reversed = reverse_all(model, &x, &cfg, progress)?;
    let norms: Vec<f64> = reversed.iter().map(|r| r.norm).collect();
    let index = anomaly_indices(&norms);
    let flagged: Vec<String> = index
        .iter()
        .enumerate()
        .filter(|(_, &a)| a > FLAG_THRESHOLD)
        .map(|(c, _)| c.to_string())
        .collect();
    let top = argmax(&index);
    let s = images.size();
    let truth = setting.trigger_pixels([s[1], s[2], s[3]]);
    Ok(DetectionRow {
        unit_id: unit_id.to_string(),
        model: setting.name.clone(),
        detector: detector.into(),
        score: index[top],
        max_index: index[top],
        max_pw: None,
        min_norm: norms.iter().copied().reduce(f64::min),
        flagged: !flagged.is_empty(),
        flagged_classes: flagged.join(","),
        predicted_target: top as i64,
        trigger_iou: truth.map(|t| top_k_iou(&reversed[top].mask, &t)),
        seconds: started.elapsed().as_secs_f64(),
        class_stats: Some(norms.iter().map(|&v| v as f32).collect()),
    })
}
