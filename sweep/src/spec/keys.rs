//! The spec's keys: every table and field with its default (serde), as users write them in TOML.

use iscp_engine::canvas::CanvasKind;
use iscp_engine::model::{Arch, Normalize};
use iscp_engine::search::Objective;
use iscp_engine::train::{Schedule, TrainConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use toml::Spanned;

/// A whole experiment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Names the results folder `<results>/<name>/`.
    pub name: Spanned<String>,
    #[serde(default)]
    pub seed: u64,
    pub data: DataSpec,
    #[serde(default = "no_settings")]
    pub settings: Spanned<Vec<SettingSpec>>,
    /// Many models audited for backdoors: generated (clean and BadNets) and/or given files.
    pub population: Option<Spanned<PopulationSpec>>,
    pub search: SearchSpec,
    #[serde(default)]
    pub run: RunSpec,
    /// Backdoor scan of every setting from its best patterns at `scan.size`.
    pub scan: Option<ScanSpec>,
    /// Baseline patterns per class: UAPs and Grad-CAM patches.
    pub baselines: Option<BaselinesSpec>,
    /// Pairs of settings: patterns found on `from` evaluated on `to`'s model.
    #[serde(default = "no_transfer")]
    pub transfer: Spanned<Vec<TransferSpec>>,
}

fn no_settings() -> Spanned<Vec<SettingSpec>> {
    Spanned::new(0..0, vec![])
}

fn no_transfer() -> Spanned<Vec<TransferSpec>> {
    Spanned::new(0..0, vec![])
}

/// `[[transfer]]`: evaluate one setting's best patterns on another setting's model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    pub from: String,
    pub to: String,
}

/// `[baselines]`: the paper's comparisons.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinesSpec {
    /// Class-wise targeted UAP radii ε, in units of 1/255 (e.g. [8, 16, 32]).
    #[serde(default)]
    pub uap_eps: Vec<f64>,
    /// Grad-CAM high-attention patches on each canvas of the search.
    #[serde(default)]
    pub gradcam: bool,
    /// Size of the Grad-CAM patch (fraction of the image).
    #[serde(default = "default_gradcam_size")]
    pub gradcam_size: f64,
}

fn default_gradcam_size() -> f64 {
    0.1
}

/// `[scan]`: flag classes whose small patterns are anomalously predictive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSpec {
    /// The pattern size compared across classes; must be one of `search.sizes`.
    #[serde(default = "default_scan_size")]
    pub size: Spanned<f64>,
}

fn default_scan_size() -> Spanned<f64> {
    Spanned::new(0..0, 0.01)
}

/// Where the images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// IDX folder with Fashion-MNIST's class names.
    FashionMnist,
    /// IDX folder (MNIST layout), classes numbered.
    Idx,
    /// `cifar-10-batches-bin` folder.
    Cifar10,
    /// Generated shapes (see `SyntheticConfig`).
    Synthetic,
    /// One sub-folder of JPEG/PNG images per class (ImageNet's validation set), resized and
    /// centre-cropped.
    ImageFolder,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub kind: DataKind,
    pub path: Option<Spanned<PathBuf>>,
    pub class_names: Option<Vec<String>>,
    pub classes: Option<usize>,
    pub size: Option<usize>,
    pub channels: Option<usize>,
    pub train: Option<usize>,
    pub test: Option<usize>,
    pub seed: Option<u64>,
    // Image folders. Absent keys are left out of unit ids, so older specs keep theirs.
    /// Image folder to train on (`path` is the one searched and evaluated on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_path: Option<Spanned<PathBuf>>,
    /// Shorter side after resizing (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<u32>,
    /// Side of the centred square kept (default 224).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<u32>,
    /// At most this many images per class (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_class: Option<usize>,
}

/// How a setting's model comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingKind {
    Natural,
    Badnets,
    /// Adversarially trained (PGD L∞ ε 8/255, step 2/255, 7 steps, random start).
    Adversarial,
}

impl SettingKind {
    pub fn name(self) -> &'static str {
        match self {
            SettingKind::Natural => "natural",
            SettingKind::Badnets => "badnets",
            SettingKind::Adversarial => "adversarial",
        }
    }
}

/// Training hyper-parameters; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub augment: Option<bool>,
    /// CUDA autocast + dynamic loss scaling (default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_precision: Option<bool>,
}

impl TrainSpec {
    /// These keys with `over`'s laid on top: each key `over` gives replaces this one's.
    pub fn overlaid(&self, over: &TrainSpec) -> TrainSpec {
        TrainSpec {
            epochs: over.epochs.or(self.epochs),
            batch: over.batch.or(self.batch),
            lr: over.lr.or(self.lr),
            momentum: over.momentum.or(self.momentum),
            weight_decay: over.weight_decay.or(self.weight_decay),
            schedule: over.schedule.or(self.schedule),
            augment: over.augment.or(self.augment),
            mixed_precision: over.mixed_precision.or(self.mixed_precision),
        }
    }
}

/// One setting: a model (trained here, or a TorchScript file) plus the data it is evaluated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    pub name: String,
    pub kind: SettingKind,
    #[serde(default = "default_arch")]
    pub arch: Arch,
    /// A TorchScript file to use instead of training.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Spanned<PathBuf>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
    /// TorchScript only: `[features, head]`, two methods the module exports for Grad-CAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gradcam_methods: Option<Vec<String>>,
    #[serde(default)]
    pub train: TrainSpec,
    /// BadNets target class (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Spanned<i64>>,
    /// BadNets: one model per target class (`"all"` or a list), named `<name>-target<k>`; each
    /// expands to a setting with that `target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Spanned<Classes>>,
    /// A folder with `CIFAR_ims` and `CIFAR_lab` (`torch.save` files, as Ilyas et al. published
    /// D_R and D_NR): this setting's model trains on them instead of the spec's training set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_tensors: Option<Spanned<PathBuf>>,
    /// Build this setting's training set from the spec's (D_R / D_NR, Ilyas et al. 2019): every
    /// training image is rebuilt by representation inversion on the model of the setting `from`
    /// (robust for D_R, standard for D_NR), as `derive-data` units of `shard` images each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derive: Option<Spanned<DeriveSpec>>,
    /// BadNets trigger family (default `patch`: the square the other trigger keys describe;
    /// `sparse`, `blend`, `sig` and `warp` are drawn from `trigger_seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_family: Option<iscp_engine::attack::Family>,
    /// BadNets trigger (default checkerboard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<iscp_engine::badnets::Trigger>,
    /// BadNets trigger side in pixels (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_size: Option<i64>,
    /// BadNets trigger position (default bottom-right).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_position: Option<iscp_engine::badnets::Position>,
    /// Seed of the trigger's colours and random position (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_seed: Option<u64>,
    /// A given model's known trigger box `[row, column, side]` (from a population's manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_box: Option<[i64; 3]>,
    /// BadNets poison rate (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poison_rate: Option<Spanned<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// `settings[].derive`: how a D_R / D_NR training set is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveSpec {
    /// The setting whose model's penultimate representation is matched.
    pub from: String,
    /// Gradient steps per image (1,000).
    #[serde(default = "default_derive_steps")]
    pub steps: usize,
    /// L2 length of each step in pixel space (0.1).
    #[serde(default = "default_derive_step_size")]
    pub step_size: f64,
    /// Training images per `derive-data` unit (1,000).
    #[serde(default = "default_derive_shard")]
    pub shard: usize,
    /// Images inverted together in one forward/backward pass (250).
    #[serde(default = "default_derive_batch")]
    pub batch: usize,
    /// Only the first `images` training images (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<usize>,
}

fn default_derive_steps() -> usize {
    1000
}

fn default_derive_step_size() -> f64 {
    0.1
}

fn default_derive_shard() -> usize {
    1000
}

fn default_derive_batch() -> usize {
    250
}

fn default_arch() -> Arch {
    Arch::SmallCnn
}

/// `classes = "all"` or a list of class indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Classes {
    Keyword(String),
    List(Vec<i64>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanvasSpec {
    pub kind: CanvasKind,
    /// How many canvases of this kind (ranks 0..n); ignored for white.
    #[serde(default = "one")]
    pub n: usize,
}

fn one() -> usize {
    1
}

/// The search grid and its hyper-parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    #[serde(default = "all_classes")]
    pub classes: Spanned<Classes>,
    pub canvases: Spanned<Vec<CanvasSpec>>,
    pub alphas: Spanned<Vec<f64>>,
    #[serde(default = "default_objectives")]
    pub objectives: Vec<Objective>,
    /// Total-variation weights β (Eq. 3); 0 is the base objective.
    #[serde(default = "default_tv_betas")]
    pub tv_betas: Spanned<Vec<f64>>,
    /// Whether the canvas is fixed (`false`) and/or learned (`true`, Eq. 4).
    #[serde(default = "default_learned_canvas")]
    pub learned_canvas: Vec<bool>,
    #[serde(default = "default_epochs")]
    pub epochs: Spanned<usize>,
    #[serde(default = "default_batch")]
    pub batch: Spanned<usize>,
    #[serde(default = "default_lr")]
    pub lr: Spanned<f64>,
    #[serde(default = "default_fraction")]
    pub subset_fraction: Spanned<f64>,
    pub sizes: Spanned<Vec<f64>>,
}

fn all_classes() -> Spanned<Classes> {
    Spanned::new(0..0, Classes::Keyword("all".into()))
}
fn default_objectives() -> Vec<Objective> {
    vec![Objective::Released]
}
fn default_tv_betas() -> Spanned<Vec<f64>> {
    Spanned::new(0..0, vec![0.0])
}
fn default_learned_canvas() -> Vec<bool> {
    vec![false]
}
fn default_epochs() -> Spanned<usize> {
    Spanned::new(0..0, 5)
}
fn default_batch() -> Spanned<usize> {
    Spanned::new(0..0, 4)
}
fn default_lr() -> Spanned<f64> {
    Spanned::new(0..0, 0.02)
}
fn default_fraction() -> Spanned<f64> {
    Spanned::new(0..0, 0.2)
}

/// Where and how the local run computes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    #[serde(default = "default_device")]
    pub device: String,
    /// libtorch intra-op threads (default: all cores).
    pub threads: Option<usize>,
    /// Images per forward pass when evaluating patterns; None: `eval_batch_on` the device.
    #[serde(default)]
    pub eval_batch: Option<usize>,
    /// Units the local worker leases at once; searches of one model among them run together as one
    /// batched optimisation. None: chosen per device (`iscp_worker::auto_max_units`).
    pub batch_searches: Option<usize>,
    /// Arithmetic of the model's passes in searches, evaluations and detectors: `fp32`, `bf16`
    /// (CPUs with bf16 instructions, CUDA) or `fp16` (CUDA autocast); training stays fp32.
    /// `search_precision` is its older name.
    #[serde(default, alias = "search_precision")]
    pub precision: iscp_engine::amp::Precision,
}

fn default_device() -> String {
    "cpu".into()
}
impl RunSpec {
    /// Images per evaluation forward pass on `device`: `eval_batch` when the spec sets it, else
    /// 256 on the CPU (a batch's activations then fit a thread's 64 MB malloc heap, so glibc's
    /// arena per thread serves them without mapping them afresh; see `src/malloc.rs`) and 1,024
    /// on CUDA.
    pub fn eval_batch_on(&self, device: tch::Device) -> i64 {
        match (self.eval_batch, device) {
            (Some(n), _) => n as i64,
            (None, tch::Device::Cuda(_)) => 1024,
            (None, _) => 256,
        }
    }
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            device: default_device(),
            threads: None,
            eval_batch: None,
            batch_searches: None,
            precision: Default::default(),
        }
    }
}

impl SettingSpec {
    pub fn train_config(&self, spec_seed: u64) -> TrainConfig {
        let d = TrainConfig::default();
        let t = &self.train;
        TrainConfig {
            epochs: t.epochs.unwrap_or(d.epochs),
            batch: t.batch.unwrap_or(d.batch),
            lr: t.lr.unwrap_or(d.lr),
            momentum: t.momentum.unwrap_or(d.momentum),
            weight_decay: t.weight_decay.unwrap_or(d.weight_decay),
            schedule: t.schedule.unwrap_or(d.schedule),
            augment: t.augment.unwrap_or(d.augment),
            seed: self.seed.unwrap_or(spec_seed),
            adversarial: (self.kind == SettingKind::Adversarial)
                .then(iscp_engine::adversarial::PgdConfig::training),
            mixed_precision: t.mixed_precision.unwrap_or(d.mixed_precision),
        }
    }

    pub fn badnets_target(&self) -> i64 {
        self.target.as_ref().map(|t| *t.get_ref()).unwrap_or(0)
    }

    /// The flat pixel indices (row-major over H×W) of this setting's trigger, when it is known and
    /// covers few pixels: a trained BadNets model's patch or sparse trigger, or a given one's
    /// `trigger_box`.
    pub fn trigger_pixels(&self, shape: [i64; 3]) -> Option<Vec<usize>> {
        if self.kind != SettingKind::Badnets {
            return None;
        }
        let [_, h, w] = shape;
        if self.model.is_some() {
            let [r, c, s] = self.trigger_box?;
            let px: Vec<usize> = (r.max(0)..(r + s).min(h))
                .flat_map(|y| (c.max(0)..(c + s).min(w)).map(move |x| (y * w + x) as usize))
                .collect();
            return (!px.is_empty()).then_some(px);
        }
        use iscp_engine::attack::Poisoner as _;
        self.attack(shape).ok()?.pixels()
    }

    /// The trigger family (patch unless the setting names another).
    pub fn family(&self) -> iscp_engine::attack::Family {
        self.trigger_family.unwrap_or_default()
    }

    /// The trained BadNets model's trigger on `shape` images, whatever its family.
    pub fn attack(&self, shape: [i64; 3]) -> iscp_engine::Result<iscp_engine::attack::Attack> {
        let spec = self.trigger_spec();
        iscp_engine::attack::Attack::new(self.family(), &spec, spec.seed, shape)
    }

    /// The BadNets trigger: kind, side, position and colour seed.
    pub fn trigger_spec(&self) -> iscp_engine::badnets::TriggerSpec {
        iscp_engine::badnets::TriggerSpec {
            kind: self.trigger.unwrap_or_default(),
            size: self.trigger_size.unwrap_or(iscp_engine::badnets::TRIGGER),
            position: self.trigger_position.unwrap_or_default(),
            seed: self.trigger_seed.unwrap_or(0),
        }
    }

    pub fn poison_rate(&self) -> f64 {
        self.poison_rate
            .as_ref()
            .map(|r| *r.get_ref())
            .unwrap_or(0.1)
    }
}

/// `[population]`: models to audit, as settings named `clean-NNN`, `badnets-NNN` (generated, each
/// from its own seed) and after their file stems (given); each gets a scan (`iscp`) and a Neural
/// Cleanse detector, and the sweep ends with an `audit` of both detectors over the population.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    /// Generated clean models.
    #[serde(default)]
    pub clean: usize,
    /// Generated BadNets models: random target, trigger kind, side, position and poison rate.
    #[serde(default)]
    pub badnets: usize,
    /// Architectures drawn from (default small-cnn).
    #[serde(default = "default_population_archs")]
    pub archs: Vec<Arch>,
    /// Trigger families drawn from (default [patch]; also sparse, blend, sig, warp). The patch
    /// keys below describe the `patch` family only.
    #[serde(default = "default_families")]
    pub families: Vec<iscp_engine::attack::Family>,
    /// Trigger kinds drawn from (default checkerboard, white-square, random-colours, solid).
    #[serde(default = "default_population_triggers")]
    pub triggers: Vec<iscp_engine::badnets::Trigger>,
    /// Smallest and largest trigger side in pixels (default [2, 5]).
    #[serde(default = "default_trigger_sizes")]
    pub trigger_sizes: [i64; 2],
    /// Positions drawn from (default the four corners; `random` is anywhere).
    #[serde(default = "default_positions")]
    pub positions: Vec<iscp_engine::badnets::Position>,
    /// Smallest and largest poison rate, drawn uniformly (default [0.01, 0.10]).
    #[serde(default = "default_poison_rates")]
    pub poison_rates: [f64; 2],
    /// Augmentation choices drawn from (default [false]).
    #[serde(default = "default_augment")]
    pub augment: Vec<bool>,
    /// Training of every generated model.
    #[serde(default)]
    pub train: TrainSpec,
    /// Training keys that differ for one architecture (e.g. more epochs for `gap-cnn`), laid over
    /// `train` key by key.
    #[serde(default)]
    pub train_by_arch: BTreeMap<Arch, TrainSpec>,
    /// A folder of TorchScript files (`*.pt`) to audit as well.
    #[serde(default)]
    pub given: Option<Spanned<PathBuf>>,
    /// CSV ground truth of the given files: `file,poisoned,target,trigger_row,trigger_col,trigger_size`
    /// (a header line, then one line per file; empty fields for clean models or unknown boxes).
    #[serde(default)]
    pub manifest: Option<Spanned<PathBuf>>,
    /// Normalisation the given files expect (default none: pixels in [0,1]).
    #[serde(default)]
    pub normalize: Option<Normalize>,
    /// Share of the clean models held out to calibrate each detector's threshold (default 0.5).
    #[serde(default = "default_calibration_share")]
    pub calibration_share: f64,
    /// The Neural Cleanse detector's budget.
    #[serde(default)]
    pub cleanse: CleanseSpec,
    /// The MM-BD (maximum-margin) detector's budget.
    #[serde(default)]
    pub margin: MarginSpec,
    /// The targeted-UAP detector's budget.
    #[serde(default)]
    pub uap: UapScanSpec,
}

/// `[population.uap]`: the targeted-UAP detector: per class, a universal perturbation of L∞
/// radius `eps` towards the class, on the clean images the searches use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UapScanSpec {
    /// L∞ radius in pixel units (default 0.1).
    #[serde(default = "default_uap_eps")]
    pub eps: f64,
    /// Passes over the clean images (default 3).
    #[serde(default = "default_uap_epochs")]
    pub epochs: usize,
    /// Clean images per step, each through the model once per class (default 16).
    #[serde(default = "default_uap_batch")]
    pub batch: usize,
    /// At most this many of the clean images (default 200).
    #[serde(default = "default_uap_images")]
    pub images: usize,
}

impl Default for UapScanSpec {
    fn default() -> Self {
        UapScanSpec {
            eps: default_uap_eps(),
            epochs: default_uap_epochs(),
            batch: default_uap_batch(),
            images: default_uap_images(),
        }
    }
}

fn default_uap_eps() -> f64 {
    0.1
}
fn default_uap_epochs() -> usize {
    3
}
fn default_uap_batch() -> usize {
    16
}
fn default_uap_images() -> usize {
    200
}

/// `[population.margin]`: MM-BD, the maximum-margin detector (Wang et al. 2024): per class, the
/// largest margin of its logit over the others that any input reaches, from random starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginSpec {
    /// Random starting images per class (default 8).
    #[serde(default = "default_margin_starts")]
    pub starts: usize,
    /// Adam ascent steps (default 200).
    #[serde(default = "default_margin_steps")]
    pub steps: usize,
    /// Adam's step size on pixel values in [0, 1] (default 0.05).
    #[serde(default = "default_margin_lr")]
    pub lr: f64,
}

impl Default for MarginSpec {
    fn default() -> Self {
        MarginSpec {
            starts: default_margin_starts(),
            steps: default_margin_steps(),
            lr: default_margin_lr(),
        }
    }
}

fn default_margin_starts() -> usize {
    8
}
fn default_margin_steps() -> usize {
    200
}
fn default_margin_lr() -> f64 {
    0.05
}

/// `[population.cleanse]`: Neural Cleanse on the same clean images the searches use (the
/// stratified `search.subset_fraction` of the test set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanseSpec {
    /// Passes over the clean images (default 10).
    #[serde(default = "default_cleanse_epochs")]
    pub epochs: usize,
    /// Clean images per step (default 32).
    #[serde(default = "default_cleanse_batch")]
    pub batch: usize,
    /// At most this many of the clean images (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<usize>,
    /// The cost schedules to run, each its own detector (default [short]): not part of a unit's
    /// parameters (each cleanse unit names its one schedule).
    #[serde(default = "default_cleanse_schedules", skip_serializing)]
    pub schedules: Vec<CleanseSchedule>,
}

/// How Neural Cleanse moves its L1 cost and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanseSchedule {
    /// Rounds of 10 steps, cost ×1.5 up and ÷1.5^1.5 down, every epoch runs: a short budget
    /// (detector `neural-cleanse`).
    #[default]
    Short,
    /// The original's published procedure: rounds of one pass, cost ×2 up and ÷2^1.5 down, a
    /// label stops after 25 rounds without a 1% smaller mask, at most 1,000 passes as the
    /// original (`epochs` does not apply) (detector `neural-cleanse-original`).
    Original,
}

impl CleanseSchedule {
    pub fn is_short(&self) -> bool {
        *self == CleanseSchedule::Short
    }
}

fn default_cleanse_schedules() -> Vec<CleanseSchedule> {
    vec![CleanseSchedule::Short]
}

impl Default for CleanseSpec {
    fn default() -> Self {
        CleanseSpec {
            epochs: default_cleanse_epochs(),
            batch: default_cleanse_batch(),
            images: None,
            schedules: default_cleanse_schedules(),
        }
    }
}

fn default_cleanse_epochs() -> usize {
    10
}
fn default_cleanse_batch() -> usize {
    32
}
fn default_population_archs() -> Vec<Arch> {
    vec![Arch::SmallCnn]
}
fn default_population_triggers() -> Vec<iscp_engine::badnets::Trigger> {
    use iscp_engine::badnets::Trigger;
    vec![
        Trigger::Checkerboard,
        Trigger::WhiteSquare,
        Trigger::RandomColours,
        Trigger::Solid,
    ]
}
fn default_families() -> Vec<iscp_engine::attack::Family> {
    vec![iscp_engine::attack::Family::Patch]
}
fn default_trigger_sizes() -> [i64; 2] {
    [2, 5]
}
fn default_positions() -> Vec<iscp_engine::badnets::Position> {
    iscp_engine::badnets::Position::CORNERS.to_vec()
}
fn default_poison_rates() -> [f64; 2] {
    [0.01, 0.10]
}
fn default_augment() -> Vec<bool> {
    vec![false]
}
fn default_calibration_share() -> f64 {
    0.5
}
