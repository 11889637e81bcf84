//! The parameters of each unit kind, whose JSON (with the kind's name) a unit's id hashes.

use crate::spec::SettingSpec;
use iscp_engine::canvas::CanvasKind;
use iscp_engine::search::Objective;
use serde::{Deserialize, Serialize};

/// A variant of the search objective: total variation (Eq. 3) and/or a learned canvas (Eq. 4).
/// Fields at their defaults are left out of the id, so base searches keep their ids.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Variant {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tv_beta: f64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learn_canvas: bool,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Variant {
    /// `base`, `tv`, `learned-canvas` or `tv+learned-canvas`.
    pub fn name(&self) -> &'static str {
        match (self.tv_beta > 0.0, self.learn_canvas) {
            (false, false) => "base",
            (true, false) => "tv",
            (false, true) => "learned-canvas",
            (true, true) => "tv+learned-canvas",
        }
    }
}

/// One search: a class, a canvas, an alpha and an objective on a setting's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    pub class: i64,
    pub canvas_kind: CanvasKind,
    pub canvas_rank: usize,
    pub alpha: f64,
    pub objective: Objective,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub subset_fraction: f64,
    pub seed: u64,
    #[serde(flatten)]
    pub variant: Variant,
}

/// Evaluation of one group (setting, class, alpha, objective) over all its canvases and sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    pub class: i64,
    pub alpha: f64,
    pub objective: Objective,
    pub sizes: Vec<f64>,
    pub subset_fraction: f64,
    pub seed: u64,
    #[serde(flatten)]
    pub variant: Variant,
    pub search_ids: Vec<String>,
}

/// A baseline pattern for one class: a class-wise UAP at one ε, or Grad-CAM patches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    pub class: i64,
    /// `uap` or `gradcam`.
    pub method: String,
    /// UAP: ε in pixel units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// Grad-CAM: the patch size and the canvases (kind, rank) it is computed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canvases: Vec<(CanvasKind, usize)>,
    pub subset_fraction: f64,
    pub seed: u64,
}

/// One shard of a derived (D_R / D_NR) training set: training images `start..start + count`
/// rebuilt on the model of the setting `source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeriveParams {
    /// The derived setting.
    pub setting: String,
    /// The setting whose model is inverted, and its prepare unit.
    pub source: String,
    #[serde(rename = "source_id")]
    pub source_prepare_id: String,
    pub start: usize,
    pub count: usize,
    pub steps: usize,
    pub step_size: f64,
    pub batch: usize,
    pub seed: u64,
}

/// A setting's pictures, drawn from the parts of its evaluations (and the searches they name) and
/// of its baselines, once they are all settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PicturesParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    pub sizes: Vec<f64>,
    pub evaluations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<String>,
}

/// A setting's backdoor scan from its evaluations' best patterns at `size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    pub size: f64,
    pub evaluations: Vec<String>,
    /// A population's scan also writes the model's `detection` row, reading these searches (the
    /// masks for the trigger IoU, the seconds); absent in other specs, so their ids stay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
}

/// Neural Cleanse on one setting's model, with the clean images the searches use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanseParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    #[serde(flatten)]
    pub budget: crate::spec::CleanseSpec,
    /// Absent for the short schedule (the ids of earlier sweeps stay).
    #[serde(
        default,
        skip_serializing_if = "crate::spec::CleanseSchedule::is_short"
    )]
    pub schedule: crate::spec::CleanseSchedule,
    pub subset_fraction: f64,
    pub seed: u64,
}

/// MM-BD (the maximum-margin detector) on one setting's model: no clean images needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    #[serde(flatten)]
    pub budget: crate::spec::MarginSpec,
    pub seed: u64,
}

/// The targeted-UAP detector on one setting's model, with the clean images the searches use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UapScanParams {
    pub setting: String,
    #[serde(rename = "setting_id")]
    pub prepare_id: String,
    #[serde(flatten)]
    pub budget: crate::spec::UapScanSpec,
    pub subset_fraction: f64,
    pub seed: u64,
}

/// The audit of a population: every model's ground truth (its prepare unit's `models` row) and
/// every detector's row (its scan, cleanse, max-margin and uap-scan units' `detection` parts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditParams {
    pub prepares: Vec<String>,
    pub detections: Vec<String>,
    pub calibration_share: f64,
    pub seed: u64,
    /// The audit's method (`crate::audit::METHOD`): part of the id, so that a sweep resumed
    /// after the audit's computation changed audits again.
    #[serde(default)]
    pub method: u32,
}

/// The best patterns of setting `from` (its evaluations) evaluated on the model of setting `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferParams {
    pub from: String,
    pub to: String,
    /// The prepare unit of `to`: the model the patterns are evaluated on.
    #[serde(rename = "to_id")]
    pub to_prepare_id: String,
    pub evaluations: Vec<String>,
    pub subset_fraction: f64,
    pub seed: u64,
}

/// A prepare unit's parameters as planned: the whole setting, the data and the seed (what its id
/// hashes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrepareParams {
    // Boxed: a setting is large beside the other kinds' parameters (serialises the same).
    pub setting: Box<SettingSpec>,
    pub data: serde_json::Value,
    pub seed: u64,
}

/// A prepare unit's parameters as a worker reads them: its setting's name. The worker takes the
/// setting from the spec by that name, and the id check proves it is the one planned.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareNamed {
    pub setting: String,
}

/// A unit's parameters, one type per kind. `P` is a prepare unit's: the whole setting where units
/// are planned (`PrepareParams`), its name where a worker receives them (`Received`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UnitParams<P = PrepareParams> {
    Derive(DeriveParams),
    Prepare(P),
    Search(SearchParams),
    Evaluate(EvaluateParams),
    Baseline(BaselineParams),
    Pictures(PicturesParams),
    Scan(ScanParams),
    Transfer(TransferParams),
    Cleanse(CleanseParams),
    Margin(MarginParams),
    UapScan(UapScanParams),
    Audit(AuditParams),
}
