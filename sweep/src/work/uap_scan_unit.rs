//! The uap-scan unit: the targeted-UAP detector on a setting's model with the clean images the
//! searches use, as the model's `uap` detection row.

use crate::spec::SettingSpec;
use crate::tables::{DetectionRow, UAP};
use crate::units::UapScanParams;
use crate::work::argmax;
use crate::Result;
use iscp_engine::anomaly::FLAG_THRESHOLD;
use iscp_engine::rng::mix;
use iscp_engine::uap_scan::{uap_success_by_class, UapScanConfig};
use tch::Tensor;

/// The smallest spread the anomaly index divides by: with every class near 0 success, one class at
/// 0.05 is not an outlier.
const MIN_SPREAD: f64 = 0.02;

/// Each class's anomaly index of its success: (success − median) / max(1.4826 · MAD, 0.02).
pub fn success_indices(success: &[f64]) -> Vec<f64> {
    iscp_engine::anomaly::anomaly_indices_floored(success, MIN_SPREAD)
}

/// Runs the targeted-UAP detector on `model` over `images[clean]` (a seeded `budget.images` of them).
pub fn run_uap_scan(
    model: &iscp_engine::model::Model,
    images: &Tensor,
    clean: &[i64],
    setting: &SettingSpec,
    unit_id: &str,
    p: &UapScanParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DetectionRow> {
    let started = std::time::Instant::now();
    let x =
        super::cleanse_unit::seeded_choice(images, clean, p.budget.images, mix(&[p.seed, 0x0A95]));
    let cfg = UapScanConfig {
        eps: p.budget.eps,
        epochs: p.budget.epochs,
        batch: p.budget.batch,
        seed: mix(&[p.seed, 0x0A96]),
    };
    let success = uap_success_by_class(model, &x, &cfg, progress)?;
    let index = success_indices(&success);
    let top = argmax(&index);
    let flagged: Vec<String> = index
        .iter()
        .enumerate()
        .filter(|(_, &a)| a > FLAG_THRESHOLD)
        .map(|(c, _)| c.to_string())
        .collect();
    Ok(DetectionRow {
        unit_id: unit_id.to_string(),
        model: setting.name.clone(),
        detector: UAP.into(),
        score: index[top],
        max_index: index[top],
        max_pw: success.get(top).copied(),
        min_norm: None,
        flagged: !flagged.is_empty(),
        flagged_classes: flagged.join(","),
        predicted_target: top as i64,
        trigger_iou: None,
        seconds: started.elapsed().as_secs_f64(),
        class_stats: Some(success.iter().map(|&v| v as f32).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_class_reached_far_more_often_stands_out() {
        let idx = success_indices(&[0.02, 0.05, 0.9, 0.03, 0.04]);
        assert!(idx[2] > 10.0, "{idx:?}");
        assert!(idx.iter().enumerate().all(|(i, v)| i == 2 || *v < 2.0));
        // All near zero: the floor keeps a 0.05 from looking like an outlier.
        let flat = success_indices(&[0.0, 0.0, 0.05, 0.0]);
        assert!(flat[2] <= 2.5, "{flat:?}");
    }
}
