//! The experiment spec (TOML): its keys, defaults, and the checks that refuse a bad spec before any
//! work starts, naming the key and its line.

use crate::{CoordError, Result};
use iscp_engine::canvas::CanvasKind;
use iscp_engine::model::{Arch, Normalize};
use iscp_engine::search::Objective;
use iscp_engine::train::{Schedule, TrainConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
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
    pub settings: Spanned<Vec<SettingSpec>>,
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
    /// BadNets trigger (default checkerboard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<iscp_engine::badnets::Trigger>,
    /// BadNets poison rate (default 0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poison_rate: Option<Spanned<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

fn default_arch() -> Arch {
    Arch::SmallCnn
}

/// `classes = "all"` or a list of class indices.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Images per forward pass when evaluating patterns.
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
    /// Searches of one model run together as one batched optimisation.
    #[serde(default = "default_batch_searches")]
    pub batch_searches: usize,
}

fn default_batch_searches() -> usize {
    16
}

fn default_device() -> String {
    "cpu".into()
}
fn default_eval_batch() -> usize {
    1024
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            device: default_device(),
            threads: None,
            eval_batch: default_eval_batch(),
            batch_searches: default_batch_searches(),
        }
    }
}

/// A parsed spec with its source text, for turning spans into line numbers.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// Whether files the spec names must exist (not when only planning).
    check_files: bool,
    pub spec: Spec,
    pub file: String,
    pub source: String,
}

impl LoadedSpec {
    /// Reads and parses a spec file; refuses unknown keys and wrong types, then checks values that
    /// need no data (see `check_classes` for those that do).
    pub fn load(path: &Path) -> Result<LoadedSpec> {
        let source = std::fs::read_to_string(path).map_err(|e| CoordError::io(path, e))?;
        Self::parse(&source, &path.display().to_string())
    }

    /// Like `load`, but files the spec names (data, TorchScript models) need not exist yet:
    /// for planning a sweep that will run elsewhere.
    pub fn load_for_plan(path: &Path) -> Result<LoadedSpec> {
        let source = std::fs::read_to_string(path).map_err(|e| CoordError::io(path, e))?;
        Self::parse_with(&source, &path.display().to_string(), false)
    }

    pub fn parse(source: &str, file: &str) -> Result<LoadedSpec> {
        Self::parse_with(source, file, true)
    }

    fn parse_with(source: &str, file: &str, check_files: bool) -> Result<LoadedSpec> {
        let spec: Spec = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| line_of(source, s.start)).unwrap_or(0);
            let message = e.message().to_string();
            let key = key_in_message(&message).unwrap_or_else(|| key_at_line(source, line));
            CoordError::Spec {
                file: file.to_string(),
                line,
                key,
                message,
            }
        })?;
        let loaded = LoadedSpec {
            check_files,
            spec,
            file: file.to_string(),
            source: source.to_string(),
        };
        loaded.check()?;
        Ok(loaded)
    }

    fn err<T>(&self, span: std::ops::Range<usize>, key: &str, message: impl ToString) -> Result<T> {
        let line = if span.is_empty() && span.start == 0 {
            0
        } else {
            line_of(&self.source, span.start)
        };
        Err(CoordError::Spec {
            file: self.file.clone(),
            line,
            key: key.into(),
            message: message.to_string(),
        })
    }

    fn check(&self) -> Result<()> {
        let s = &self.spec;
        let name = s.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return self.err(
                s.name.span(),
                "name",
                "use letters, digits, `-`, `_` or `.` (it names a folder)",
            );
        }
        let d = &s.data;
        match (&d.path, d.kind) {
            (None, DataKind::Synthetic) => {}
            (None, _) => {
                return self.err(
                    0..0,
                    "data.path",
                    "missing: this data kind reads files from a folder",
                )
            }
            (Some(p), _) if self.check_files && !p.get_ref().exists() => {
                return self.err(
                    p.span(),
                    "data.path",
                    format!("{} does not exist", p.get_ref().display()),
                )
            }
            _ => {}
        }
        let sizes = &s.search.sizes;
        if sizes.get_ref().is_empty() {
            return self.err(sizes.span(), "search.sizes", "give at least one size");
        }
        if let Some(bad) = sizes.get_ref().iter().find(|&&v| !(v > 0.0 && v <= 1.0)) {
            return self.err(
                sizes.span(),
                "search.sizes",
                format!("size {bad} is impossible: sizes are fractions in (0, 1]"),
            );
        }
        let alphas = &s.search.alphas;
        if alphas.get_ref().is_empty()
            || alphas.get_ref().iter().any(|&a| !(0.0..=1.0).contains(&a))
        {
            return self.err(
                alphas.span(),
                "search.alphas",
                "give one or more alphas in [0, 1]",
            );
        }
        let f = &s.search.subset_fraction;
        if !(*f.get_ref() > 0.0 && *f.get_ref() < 1.0) {
            return self.err(
                f.span(),
                "search.subset_fraction",
                "must lie strictly between 0 and 1",
            );
        }
        for (key, v) in [
            ("search.epochs", &s.search.epochs),
            ("search.batch", &s.search.batch),
        ] {
            if *v.get_ref() == 0 {
                return self.err(v.span(), key, "must be at least 1");
            }
        }
        if *s.search.lr.get_ref() <= 0.0 {
            return self.err(s.search.lr.span(), "search.lr", "must be positive");
        }
        if s.search.canvases.get_ref().is_empty()
            || s.search.canvases.get_ref().iter().any(|c| c.n == 0)
        {
            return self.err(
                s.search.canvases.span(),
                "search.canvases",
                "give at least one canvas kind, each with n ≥ 1",
            );
        }
        let tv = &s.search.tv_betas;
        if tv.get_ref().is_empty() || tv.get_ref().iter().any(|&b| !(b >= 0.0 && b.is_finite())) {
            return self.err(
                tv.span(),
                "search.tv_betas",
                "give one or more β ≥ 0 (0 = no total variation)",
            );
        }
        if s.search.learned_canvas.is_empty() {
            return self.err(
                0..0,
                "search.learned_canvas",
                "give [false], [true] or [false, true]",
            );
        }
        if s.search.objectives.is_empty() {
            return self.err(0..0, "search.objectives", "give at least one objective");
        }
        if let Classes::Keyword(k) = s.search.classes.get_ref() {
            if k != "all" {
                return self.err(
                    s.search.classes.span(),
                    "search.classes",
                    format!("`{k}`: use \"all\" or a list of class indices"),
                );
            }
        }
        if let Some(scan) = &s.scan {
            let v = *scan.size.get_ref();
            if !sizes.get_ref().iter().any(|&x| (x - v).abs() < 1e-12) {
                return self.err(
                    scan.size.span(),
                    "scan.size",
                    format!("{v} is not one of search.sizes {:?}", sizes.get_ref()),
                );
            }
        }
        if let Some(b) = &s.baselines {
            if b.uap_eps.iter().any(|&e| !(e > 0.0 && e <= 255.0))
                || !(b.gradcam_size > 0.0 && b.gradcam_size <= 1.0)
            {
                return self.err(
                    0..0,
                    "baselines",
                    "uap_eps are in (0, 255] (units of 1/255) and gradcam_size in (0, 1]",
                );
            }
        }
        for (i, t) in s.transfer.get_ref().iter().enumerate() {
            for name in [&t.from, &t.to] {
                if !s.settings.get_ref().iter().any(|st| &st.name == name) {
                    return self.err(
                        s.transfer.span(),
                        &format!("transfer[{i}]"),
                        format!("`{name}` is not a setting of this spec"),
                    );
                }
            }
        }
        if s.run.batch_searches == 0 || s.run.eval_batch == 0 {
            return self.err(
                0..0,
                "run.batch_searches",
                "run.batch_searches and run.eval_batch must be at least 1",
            );
        }
        if s.settings.get_ref().is_empty() {
            return self.err(s.settings.span(), "settings", "give at least one setting");
        }
        let mut names = std::collections::HashSet::new();
        for (i, st) in s.settings.get_ref().iter().enumerate() {
            if !names.insert(&st.name) || st.name.is_empty() {
                return self.err(
                    s.settings.span(),
                    &format!("settings[{i}].name"),
                    format!("`{}` is empty or used twice", st.name),
                );
            }
            if let Some(p) = &st.model {
                if self.check_files && !p.get_ref().exists() {
                    return self.err(
                        p.span(),
                        &format!("settings[{i}].model"),
                        format!("{} does not exist", p.get_ref().display()),
                    );
                }
            }
            if let Some(g) = &st.gradcam_methods {
                if g.len() != 2 || st.model.is_none() {
                    return self.err(s.settings.span(), &format!("settings[{i}].gradcam_methods"), "give [features, head] method names, for a setting with a TorchScript `model`");
                }
            }
            if let Some(r) = &st.poison_rate {
                if !(*r.get_ref() > 0.0 && *r.get_ref() < 1.0) {
                    return self.err(
                        r.span(),
                        &format!("settings[{i}].poison_rate"),
                        "must lie strictly between 0 and 1",
                    );
                }
            }
        }
        Ok(())
    }

    /// Checks class indices (search classes, BadNets targets) once the number of classes is known.
    pub fn check_classes(&self, num_classes: usize) -> Result<()> {
        let k = num_classes as i64;
        if let Classes::List(list) = self.spec.search.classes.get_ref() {
            if list.is_empty() {
                return self.err(
                    self.spec.search.classes.span(),
                    "search.classes",
                    "empty list",
                );
            }
            if let Some(bad) = list.iter().find(|&&c| c < 0 || c >= k) {
                return self.err(
                    self.spec.search.classes.span(),
                    "search.classes",
                    format!(
                        "class {bad} does not exist: the data has classes 0..{}",
                        k - 1
                    ),
                );
            }
        }
        for (i, st) in self.spec.settings.get_ref().iter().enumerate() {
            if let Some(t) = &st.target {
                if *t.get_ref() < 0 || *t.get_ref() >= k {
                    return self.err(
                        t.span(),
                        &format!("settings[{i}].target"),
                        format!(
                            "class {} does not exist: the data has classes 0..{}",
                            t.get_ref(),
                            k - 1
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The class indices searched.
    pub fn classes(&self, num_classes: usize) -> Vec<i64> {
        match self.spec.search.classes.get_ref() {
            Classes::List(l) => l.clone(),
            Classes::Keyword(_) => (0..num_classes as i64).collect(),
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
        }
    }

    pub fn badnets_target(&self) -> i64 {
        self.target.as_ref().map(|t| *t.get_ref()).unwrap_or(0)
    }

    pub fn poison_rate(&self) -> f64 {
        self.poison_rate
            .as_ref()
            .map(|r| *r.get_ref())
            .unwrap_or(0.1)
    }
}

/// 1-based line of byte offset `at`.
pub fn line_of(source: &str, at: usize) -> usize {
    source[..at.min(source.len())].matches('\n').count() + 1
}

fn key_in_message(message: &str) -> Option<String> {
    let rest = message.split("field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

fn key_at_line(source: &str, line: usize) -> String {
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    text.split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string()
}
