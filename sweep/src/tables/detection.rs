//! The `detection` table (one row per model and detector: its verdict, score and cost) and the
//! `audit` table (one row per detector: its detection quality over the population).

use super::read::{read_rows, rows_of};
use super::{table_row, Row};
use crate::Result;
use arrow_array::RecordBatch;
use std::path::Path;

/// Detector names in the `detector` column.
pub const ISCP: &str = "iscp";
pub const NEURAL_CLEANSE: &str = "neural-cleanse";
/// Neural Cleanse at the original's published procedure and budget.
pub const NEURAL_CLEANSE_ORIGINAL: &str = "neural-cleanse-original";
pub const MM_BD: &str = "mm-bd";
pub const UAP: &str = "uap";
/// The fused verdict of every other detector (the audit's, not a unit's).
pub const COMBINED: &str = "combined";

table_row! {
    /// One row of `detection`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct DetectionRow {
        pub unit_id: String,
        /// The setting (model) scanned.
        pub model: String,
        /// `iscp`, `neural-cleanse`, `mm-bd` or `uap`.
        pub detector: String,
        /// What the audit ranks models by, the fixed rule made continuous. ISCP: the largest over
        /// classes of min(index / 2, PW / 0.75), above 1 when the rule flags a class (index > 2 and
        /// PW ≥ 0.75), below 1 when it flags none. Neural Cleanse: the largest anomaly index (flagged
        /// above 2). MM-BD: −log10 of the largest margin's p-value under a gamma fit to the other
        /// classes' (flagged above 1.3, p < 0.05). UAP: the anomaly index of the class its perturbation
        /// reaches most often (flagged above 2).
        pub score: f64,
        /// The largest anomaly index over classes (MM-BD: the MAD index of the largest margin).
        pub max_index: f64,
        /// ISCP: the largest PW of a class's small pattern; UAP: the predicted class's success.
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
        /// The detector's raw statistic for every class, indexed by class (NaN where a class has
        /// none): ISCP the PW of its small pattern, Neural Cleanse its reversed mask's L1 norm,
        /// MM-BD its largest margin, UAP its perturbation's success. What calibrating each class
        /// against the same class of the clean models needs (null for the combined detector and in
        /// older parts).
        pub class_stats: Option<Vec<f32>> = None,
    }
}

pub fn detection_batch(rows: &[DetectionRow]) -> RecordBatch {
    Row::batch(rows)
}

/// The detection rows of decoded batches; `label` names them in errors.
pub fn detection_rows(batches: Vec<RecordBatch>, label: &str) -> Result<Vec<DetectionRow>> {
    rows_of(Path::new(label), batches, DetectionRow::read)
}

table_row! {
    /// One row of `audit`: a detector over the population.
    #[derive(Debug, Clone, PartialEq)]
    pub struct AuditRow {
        /// `iscp`, `neural-cleanse`, `mm-bd`, `uap`, or `combined` (the smallest over the detectors
        /// of each score's p-value against the other clean models, Bonferroni-corrected).
        pub detector: String,
        /// The models scored: `all`, `family=<f>` (that family's poisoned models and every clean
        /// one) or `arch=<a>` (that architecture's models); families and architectures appear
        /// when the population has more than one.
        pub group: String = "all".to_string(),
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
        /// The AUROC with a poisoned model whose predicted target is not its true one counted as a
        /// miss (ranked below every clean model): a score that ranks a model high for the wrong
        /// class does not count.
        pub auroc_right_target: Option<f64> = None,
        /// Mean trigger IoU over poisoned models with a known trigger box.
        pub mean_trigger_iou: Option<f64>,
        pub seconds_per_model: f64,
    }
}

pub fn audit_batch(rows: &[AuditRow]) -> RecordBatch {
    Row::batch(rows)
}

/// The rows of one audit part file.
pub fn read_audit_part(part: &Path) -> Result<Vec<AuditRow>> {
    read_rows(part)
}

/// The newest part of an `audit` folder (by modification time): the audit of the sweep as it was
/// last run (an earlier spec's audit keeps its own part).
pub fn newest_audit_part(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    })
}

/// The audit rows of a table folder (every part in it).
pub fn read_audit_rows(dir: &Path) -> Result<Vec<AuditRow>> {
    super::read_table(dir, read_rows)
}

/// The detection rows of a table folder (every part in it).
pub fn read_detection_rows(dir: &Path) -> Result<Vec<DetectionRow>> {
    super::read_table(dir, read_rows)
}
