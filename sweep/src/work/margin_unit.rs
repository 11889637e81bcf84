//! The max-margin unit: MM-BD on a setting's model (no clean images), as the model's `mm-bd`
//! detection row.

use crate::spec::SettingSpec;
use crate::tables::{DetectionRow, MM_BD};
use crate::units::MarginParams;
use crate::work::argmax;
use crate::Result;
use iscp_engine::margin::{max_margin_p_value, max_margins, score_of_p, MarginConfig};
use iscp_engine::model::Model;
use iscp_engine::rng::mix;

/// MM-BD flags a model whose largest margin has a p-value under this.
pub const P_FLAG: f64 = 0.05;

/// Runs MM-BD on `model` for inputs of `shape` (C, H, W).
pub fn run_margin(
    model: &Model,
    shape: [i64; 3],
    setting: &SettingSpec,
    unit_id: &str,
    p: &MarginParams,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<DetectionRow> {
    let started = std::time::Instant::now();
    let cfg = MarginConfig {
        starts: p.budget.starts,
        steps: p.budget.steps,
        lr: p.budget.lr,
        seed: mix(&[p.seed, 0x3A4B]),
    };
    let margins = max_margins(model, shape, &cfg, progress)?;
    let p_value = max_margin_p_value(&margins);
    // The MAD index of each class's margin, on the high side (Neural Cleanse's on the negated).
    let negated: Vec<f64> = margins.iter().map(|m| -m).collect();
    let index = iscp_engine::cleanse::anomaly_indices(&negated);
    let top = argmax(&margins);
    let flagged = p_value < P_FLAG;
    Ok(DetectionRow {
        unit_id: unit_id.to_string(),
        model: setting.name.clone(),
        detector: MM_BD.into(),
        score: score_of_p(p_value),
        max_index: index.get(top).copied().unwrap_or(f64::NAN),
        max_pw: None,
        min_norm: None,
        flagged,
        flagged_classes: if flagged {
            top.to_string()
        } else {
            String::new()
        },
        predicted_target: top as i64,
        trigger_iou: None,
        seconds: started.elapsed().as_secs_f64(),
        class_stats: Some(margins.iter().map(|&v| v as f32).collect()),
    })
}
