//! The `detection` table (one row per model and detector: its verdict, score and cost) and the
//! `audit` table (one row per detector: its detection quality over the population).

use super::read::{rows_of, Cols};
use super::{b, batch, fl, i, ofl, s};
use crate::Result;
use arrow_array::RecordBatch;
use std::path::Path;

/// Detector names in the `detector` column.
pub const ISCP: &str = "iscp";
pub const NEURAL_CLEANSE: &str = "neural-cleanse";

/// One row of `detection`.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionRow {
    pub unit_id: String,
    /// The setting (model) scanned.
    pub model: String,
    /// `iscp` or `neural-cleanse`.
    pub detector: String,
    /// What the audit ranks models by, the fixed rule made continuous. ISCP: the largest over
    /// classes of min(index / 2, PW / 0.75), above 1 when the rule flags a class (index > 2 and
    /// PW ≥ 0.75), below 1 when it flags none. Neural Cleanse: the largest anomaly index (flagged
    /// above 2).
    pub score: f64,
    /// The largest anomaly index over classes.
    pub max_index: f64,
    /// ISCP: the largest PW of a class's small pattern (null for Neural Cleanse).
    pub max_pw: Option<f64>,
    /// Neural Cleanse: the smallest mask L1 norm over labels (null for ISCP).
    pub min_norm: Option<f64>,
    /// Whether the detector's fixed rule flags the model.
    pub flagged: bool,
    /// The flagged classes, comma-separated ("" when none).
    pub flagged_classes: String,
    /// The class with the largest anomaly index.
    pub predicted_target: i64,
    /// IoU of the predicted target's top-k cells with the true trigger's (k = its area); null
    /// for a model without a known trigger box.
    pub trigger_iou: Option<f64>,
    /// Compute seconds the detector spent on this model.
    pub seconds: f64,
}

pub fn detection_batch(rows: &[DetectionRow]) -> RecordBatch {
    batch(vec![
        ("unit_id", s(rows, |r| &r.unit_id), false),
        ("model", s(rows, |r| &r.model), false),
        ("detector", s(rows, |r| &r.detector), false),
        ("score", fl(rows, |r| r.score), false),
        ("max_index", fl(rows, |r| r.max_index), false),
        ("max_pw", ofl(rows, |r| r.max_pw), true),
        ("min_norm", ofl(rows, |r| r.min_norm), true),
        ("flagged", b(rows, |r| r.flagged), false),
        ("flagged_classes", s(rows, |r| &r.flagged_classes), false),
        ("predicted_target", i(rows, |r| r.predicted_target), false),
        ("trigger_iou", ofl(rows, |r| r.trigger_iou), true),
        ("seconds", fl(rows, |r| r.seconds), false),
    ])
}

fn detection_row(c: &Cols, i: usize) -> Result<DetectionRow> {
    Ok(DetectionRow {
        unit_id: c.s("unit_id", i)?,
        model: c.s("model", i)?,
        detector: c.s("detector", i)?,
        score: c.f("score", i)?,
        max_index: c.f("max_index", i)?,
        max_pw: c.of("max_pw", i)?,
        min_norm: c.of("min_norm", i)?,
        flagged: c.b("flagged", i)?,
        flagged_classes: c.s("flagged_classes", i)?,
        predicted_target: c.i("predicted_target", i)?,
        trigger_iou: c.of("trigger_iou", i)?,
        seconds: c.f("seconds", i)?,
    })
}

/// The detection rows of decoded batches; `label` names them in errors.
pub fn detection_rows(batches: Vec<RecordBatch>, label: &str) -> Result<Vec<DetectionRow>> {
    rows_of(Path::new(label), batches, detection_row)
}

/// One row of `audit`: a detector over the population.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub detector: String,
    /// Models scored: clean plus poisoned (attack-failed ones left out).
    pub models: i64,
    pub poisoned: i64,
    pub clean: i64,
    /// BadNets models whose attack success stayed under 0.9, left out of the scoring.
    pub attack_failed: i64,
    /// Models left out because the detector has no row for them (its unit failed) or the model
    /// itself could not be prepared.
    pub missing: i64,
    pub auroc: Option<f64>,
    /// Stratified bootstrap 95% interval of the AUROC (1,000 resamples).
    pub auroc_low: Option<f64>,
    pub auroc_high: Option<f64>,
    /// The best TPR at FPR ≤ 5% over all thresholds on the whole population, and that threshold.
    pub tpr_at_5_fpr: Option<f64>,
    pub threshold_at_5_fpr: Option<f64>,
    /// The detector's fixed rule (`flagged`) on the whole population.
    pub rule_tpr: Option<f64>,
    pub rule_fpr: Option<f64>,
    /// A threshold calibrated on the held-out clean models (FPR ≤ 5% on them), and its TPR and
    /// FPR on the others (the poisoned and the clean models not held out).
    pub calibration_models: i64,
    pub calibrated_threshold: Option<f64>,
    pub calibrated_tpr: Option<f64>,
    pub calibrated_fpr: Option<f64>,
    /// Share of poisoned models whose predicted target is the true one.
    pub target_top1: Option<f64>,
    /// Mean trigger IoU over poisoned models with a known trigger box.
    pub mean_trigger_iou: Option<f64>,
    pub seconds_per_model: f64,
}

pub fn audit_batch(rows: &[AuditRow]) -> RecordBatch {
    batch(vec![
        ("detector", s(rows, |r| &r.detector), false),
        ("models", i(rows, |r| r.models), false),
        ("poisoned", i(rows, |r| r.poisoned), false),
        ("clean", i(rows, |r| r.clean), false),
        ("attack_failed", i(rows, |r| r.attack_failed), false),
        ("missing", i(rows, |r| r.missing), false),
        ("auroc", ofl(rows, |r| r.auroc), true),
        ("auroc_low", ofl(rows, |r| r.auroc_low), true),
        ("auroc_high", ofl(rows, |r| r.auroc_high), true),
        ("tpr_at_5_fpr", ofl(rows, |r| r.tpr_at_5_fpr), true),
        (
            "threshold_at_5_fpr",
            ofl(rows, |r| r.threshold_at_5_fpr),
            true,
        ),
        ("rule_tpr", ofl(rows, |r| r.rule_tpr), true),
        ("rule_fpr", ofl(rows, |r| r.rule_fpr), true),
        (
            "calibration_models",
            i(rows, |r| r.calibration_models),
            false,
        ),
        (
            "calibrated_threshold",
            ofl(rows, |r| r.calibrated_threshold),
            true,
        ),
        ("calibrated_tpr", ofl(rows, |r| r.calibrated_tpr), true),
        ("calibrated_fpr", ofl(rows, |r| r.calibrated_fpr), true),
        ("target_top1", ofl(rows, |r| r.target_top1), true),
        ("mean_trigger_iou", ofl(rows, |r| r.mean_trigger_iou), true),
        (
            "seconds_per_model",
            fl(rows, |r| r.seconds_per_model),
            false,
        ),
    ])
}

fn audit_row(c: &Cols, i: usize) -> Result<AuditRow> {
    Ok(AuditRow {
        detector: c.s("detector", i)?,
        models: c.i("models", i)?,
        poisoned: c.i("poisoned", i)?,
        clean: c.i("clean", i)?,
        attack_failed: c.i("attack_failed", i)?,
        missing: c.i("missing", i)?,
        auroc: c.of("auroc", i)?,
        auroc_low: c.of("auroc_low", i)?,
        auroc_high: c.of("auroc_high", i)?,
        tpr_at_5_fpr: c.of("tpr_at_5_fpr", i)?,
        threshold_at_5_fpr: c.of("threshold_at_5_fpr", i)?,
        rule_tpr: c.of("rule_tpr", i)?,
        rule_fpr: c.of("rule_fpr", i)?,
        calibration_models: c.i("calibration_models", i)?,
        calibrated_threshold: c.of("calibrated_threshold", i)?,
        calibrated_tpr: c.of("calibrated_tpr", i)?,
        calibrated_fpr: c.of("calibrated_fpr", i)?,
        target_top1: c.of("target_top1", i)?,
        mean_trigger_iou: c.of("mean_trigger_iou", i)?,
        seconds_per_model: c.f("seconds_per_model", i)?,
    })
}

/// The rows of one audit part file.
pub fn read_audit_part(part: &Path) -> Result<Vec<AuditRow>> {
    super::read::rows(part, audit_row)
}

/// The audit rows of a table folder (every part in it).
pub fn read_audit_rows(dir: &Path) -> Result<Vec<AuditRow>> {
    super::read_table(dir, |part| super::read::rows(part, audit_row))
}

/// The detection rows of a table folder (every part in it).
pub fn read_detection_rows(dir: &Path) -> Result<Vec<DetectionRow>> {
    super::read_table(dir, |part| super::read::rows(part, detection_row))
}
