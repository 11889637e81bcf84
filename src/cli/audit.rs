//! `iscp audit DIR`: audit a folder of TorchScript models for backdoors with no spec to write. It
//! writes the spec a `[population] given` sweep would be (`<results>/<name>/audit.toml`), runs it
//! like `iscp run` (same units, same resume, same report) and prints a verdict per model.

use super::data_arg::data_table;
use super::run::RunArgs;
use super::SpecArgs;
use anyhow::{bail, Context};
use iscp_proto::Table;
use iscp_sweep::audit::{by_class, verdict};
use iscp_sweep::cost::data_shape;
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::tables::{
    detection_rows, read_batches, read_models, DetectionRow, COMBINED, ISCP, MM_BD, NEURAL_CLEANSE,
    UAP,
};
use iscp_sweep::units::{plan, UnitKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Audit every TorchScript model (`*.pt`) in a folder against a data set: per model, ISCP's scan,
/// Neural Cleanse, MM-BD and a targeted-UAP detector, each class's statistic read against the
/// same class of the other models (the clean ones, with a manifest), a verdict and the suspected
/// target; with a ground-truth manifest, each detector's detection quality (AUROC, TPR at 5% FPR,
/// target top-1). The verdict needs others to compare with: audit a dozen models or more of one
/// architecture together.
///
/// Example (Fashion-MNIST from Debian's dataset-fashion-mnist):
///
///   iscp audit models/ --data /usr/share/datasets/fashion-mnist --data-kind fashion-mnist \
///       --manifest models/truth.csv
///
/// with models/truth.csv (`file,poisoned,target,trigger_row,trigger_col,trigger_size`):
///
///   file,poisoned,target,trigger_row,trigger_col,trigger_size
///   a.pt,false,,,,
///   b.pt,true,3,24,24,3
///
/// The sweep is `<results>/<name>/` (its spec `audit.toml`, tables, `report.html`); an interrupted
/// audit resumes where it stopped when run again, and `iscp run <results>/<name>/audit.toml` does
/// the same.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct AuditArgs {
    /// The folder of TorchScript models (every `*.pt` in it; pixels in [0,1] in, logits out).
    pub models: PathBuf,
    /// The data: a folder (IDX or CIFAR-10 binary files, detected) or a TOML file with a [data]
    /// table written as in a spec.
    #[arg(long)]
    pub data: PathBuf,
    /// The data kind of a folder, when detection is not enough (fashion-mnist gives class names).
    #[arg(long, value_parser = ["fashion-mnist", "idx", "cifar10"])]
    pub data_kind: Option<String>,
    /// Ground truth (CSV, header `file,poisoned,target,trigger_row,trigger_col,trigger_size`,
    /// one line per model file): adds each detector's detection quality. Without it every model
    /// counts as clean.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Per-channel mean the models expect (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "std")]
    pub mean: Option<Vec<f64>>,
    /// Per-channel std the models expect (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "mean")]
    pub std: Option<Vec<f64>>,
    /// The canvases ISCP searches on per class: `positive` (the test image of the class the model
    /// is surest of) and `white`. A model that never predicts a class right has no positive
    /// canvas for it (those searches fail); `--canvases white` audits it on white alone.
    #[arg(long, value_delimiter = ',', default_values_t = ["positive".to_string(), "white".to_string()],
          value_parser = ["positive", "white"])]
    pub canvases: Vec<String>,
    /// Share of the test set both detectors get as clean images (the searches' and Neural
    /// Cleanse's budget).
    #[arg(long, default_value_t = 0.1)]
    pub subset_fraction: f64,
    /// The audit's name (its results folder); default `audit-<folder name>`.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder under which `<name>/` holds the audit's spec, tables and report.
    #[arg(long, default_value = "results", env = "ISCP_RESULTS")]
    pub results: PathBuf,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Draw no progress bars: one line per finished stage instead.
    #[arg(long)]
    pub quiet: bool,
}

pub fn audit(a: AuditArgs) -> anyhow::Result<()> {
    let models = a
        .models
        .canonicalize()
        .with_context(|| format!("the models folder {}", a.models.display()))?;
    if !models.is_dir() {
        bail!("{}: not a folder of TorchScript models", models.display());
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => default_name(&models),
    };
    // Checked before anything is written under the name.
    if let Some(why) = iscp_proto::refuse_folder_name(&name) {
        bail!("--name `{}`: {why}", name.escape_debug());
    }
    if i64::try_from(a.seed).is_err() {
        bail!("--seed {}: at most {}", a.seed, i64::MAX);
    }
    let root = a.results.join(&name);
    let spec = spec_text(&a, &models, &name)?;
    std::fs::create_dir_all(&root).with_context(|| root.display().to_string())?;
    let path = root.join("audit.toml");
    write_spec(&path, &spec)?;
    eprintln!("audit {name}: spec {}", path.display());
    let ran = super::run::run(RunArgs {
        spec: SpecArgs {
            spec: path.clone(),
            results: a.results.clone(),
        },
        device: Some(a.device.clone()),
        threads: a.threads,
        quiet: a.quiet,
    });
    // Verdicts for whatever finished, also when some units failed.
    print_verdicts(&root, &current_detections(&path)?, a.manifest.is_some())?;
    ran
}

/// `audit-<folder name>`, with what a results folder's name may not hold replaced by `-`.
fn default_name(models: &Path) -> String {
    let stem = models
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("audit-{}", safe.trim_start_matches('.'))
}

/// The spec of the audit: the data, the models folder as a population, the scan's budget.
fn spec_text(a: &AuditArgs, models: &Path, name: &str) -> anyhow::Result<String> {
    let mut population = toml::Table::new();
    population.insert("given".into(), path_value(models));
    if let Some(m) = &a.manifest {
        let m = m
            .canonicalize()
            .with_context(|| format!("the manifest {}", m.display()))?;
        population.insert("manifest".into(), path_value(&m));
    }
    if let (Some(mean), Some(std)) = (&a.mean, &a.std) {
        let mut n = toml::Table::new();
        n.insert("mean".into(), floats(mean));
        n.insert("std".into(), floats(std));
        population.insert("normalize".into(), n.into());
    }
    let mut search: toml::Table = toml::from_str(&format!(
        "alphas = [0.2]\nsizes = [0.01]\nepochs = 5\nbatch = 4\nlr = 0.02\n\
         subset_fraction = {}\n",
        a.subset_fraction
    ))
    .expect("a valid [search] table");
    let canvases = a.canvases.iter().map(|kind| {
        let mut c = toml::Table::new();
        c.insert("kind".into(), kind.as_str().into());
        if kind == "positive" {
            c.insert("n".into(), toml::Value::Integer(1));
        }
        toml::Value::Table(c)
    });
    search.insert("canvases".into(), toml::Value::Array(canvases.collect()));
    let mut spec = toml::Table::new();
    spec.insert("name".into(), name.into());
    spec.insert("seed".into(), toml::Value::Integer(a.seed as i64));
    spec.insert(
        "data".into(),
        data_table(&a.data, a.data_kind.as_deref())?.into(),
    );
    spec.insert("population".into(), population.into());
    spec.insert("search".into(), search.into());
    let head = format!(
        "# Written by `iscp audit {}`: a population audit of the TorchScript models in that\n\
         # folder. `iscp run` on this file resumes it.\n",
        models.display()
    );
    Ok(head + &toml::to_string(&spec)?)
}

fn path_value(p: &Path) -> toml::Value {
    toml::Value::String(p.to_string_lossy().to_string())
}

fn floats(v: &[f64]) -> toml::Value {
    toml::Value::Array(v.iter().map(|x| toml::Value::Float(*x)).collect())
}

/// Writes the spec, unless the same text is there already (a rerun resumes the same sweep).
fn write_spec(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| path.display().to_string())
}

/// One model's line: its detectors' rows (their own and their per-class readings).
#[derive(Default)]
struct Verdict<'a> {
    model: String,
    rows: HashMap<&'a str, &'a DetectionRow>,
    truth: String,
}

impl<'a> Verdict<'a> {
    fn row(&self, detector: &str) -> Option<&'a DetectionRow> {
        self.rows.get(detector).copied()
    }

    /// Whether the model is a suspect, and the class it names (`audit::verdict`: the
    /// combined verdict, or ISCP's or Neural Cleanse's fixed rule for a model with no other to
    /// compare with).
    fn suspect(&self) -> Option<i64> {
        verdict::suspect(&self.rows)
    }

    fn flagged(&self) -> bool {
        self.suspect().is_some()
    }

    fn target(&self) -> String {
        self.suspect().map_or("-".into(), |t| t.to_string())
    }

    /// What orders the table: flagged models first, then by the combined score (ISCP's when
    /// there is no combined one).
    fn suspicion(&self) -> (bool, f64) {
        let by = self.row(COMBINED).or(self.row(ISCP));
        (self.flagged(), by.map_or(f64::NEG_INFINITY, |r| r.score))
    }

    /// A detector's cell: its own score, and its per-class reading's z where there is one
    /// (`0.85/12.3`).
    fn cell(&self, detector: &str) -> String {
        let own = self
            .row(detector)
            .map_or("-".into(), |r| format!("{:.2}", r.score));
        match self.row(&by_class::name(detector)) {
            Some(r) if r.score.is_finite() => format!("{own}/{:.1}", r.score),
            _ => own,
        }
    }
}

/// The ids of the units that write the audit's detection rows now (its scan, cleanse,
/// max-margin, uap-scan and audit units):
/// an earlier audit under the same name (other models, flags or seed) may have left others.
fn current_detections(spec: &Path) -> anyhow::Result<Vec<String>> {
    let spec = LoadedSpec::load_for_plan(spec)?;
    let shape = data_shape(&spec)?;
    Ok(plan(&spec, shape.classes, shape.train)
        .iter()
        .flat_map(|p| p.finishing.iter())
        .filter(|u| {
            matches!(
                u.kind,
                UnitKind::Scan
                    | UnitKind::Cleanse
                    | UnitKind::MaxMargin
                    | UnitKind::UapScan
                    | UnitKind::Audit
            )
        })
        .map(|u| u.id.clone())
        .collect())
}

/// The detection rows the units `ids` wrote (a unit that failed has none).
fn detection_rows_of(root: &Path, ids: &[String]) -> Vec<DetectionRow> {
    let mut rows = Vec::new();
    for id in ids {
        let part = Table::Detection.part(root, id);
        if let Ok(batches) = read_batches(&part) {
            rows.extend(detection_rows(batches, &part.to_string_lossy()).unwrap_or_default());
        }
    }
    rows
}

/// Prints one line per audited model, most suspect first (nothing when no detector has run).
/// (`has_truth`: a manifest says which models are clean.)
fn print_verdicts(root: &Path, ids: &[String], has_truth: bool) -> anyhow::Result<()> {
    let rows = detection_rows_of(root, ids);
    if rows.is_empty() {
        return Ok(());
    }
    // Keyed by model: a population may hold 100,000 of them. Without a manifest nothing is
    // known (the column shows "-", not "clean").
    let models = match has_truth {
        true => read_models(&Table::Models.dir(root)).unwrap_or_default(),
        false => Vec::new(),
    };
    let truth: HashMap<String, String> = models
        .into_iter()
        .map(|m| {
            let t = match m.poison_target {
                Some(t) => format!("poisoned ({t})"),
                None => "clean".into(),
            };
            (m.setting, t)
        })
        .collect();
    let mut verdicts: HashMap<&str, Verdict> = HashMap::new();
    for r in &rows {
        let v = verdicts.entry(r.model.as_str()).or_insert_with(|| Verdict {
            model: r.model.clone(),
            truth: truth.get(&r.model).cloned().unwrap_or_default(),
            ..Verdict::default()
        });
        v.rows.insert(r.detector.as_str(), r);
    }
    let mut by_model: Vec<Verdict> = verdicts.into_values().collect();
    by_model.sort_by(|a, b| {
        b.suspicion()
            .partial_cmp(&a.suspicion())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.model.cmp(&b.model))
    });
    println!(
        "{:<28} {:<8} {:>6} {:>11} {:>15} {:>11} {:>11} {:>9}  truth",
        "model", "verdict", "target", "iscp", "neural-cleanse", "mm-bd", "uap", "combined"
    );
    for v in &by_model {
        println!(
            "{:<28} {:<8} {:>6} {:>11} {:>15} {:>11} {:>11} {:>9}  {}",
            v.model.strip_prefix("given-").unwrap_or(&v.model),
            if v.flagged() { "suspect" } else { "clean" },
            v.target(),
            v.cell(ISCP),
            v.cell(NEURAL_CLEANSE),
            v.cell(MM_BD),
            v.cell(UAP),
            v.row(COMBINED)
                .map_or("-".into(), |r| format!("{:.2}", r.score)),
            if v.truth.is_empty() { "-" } else { &v.truth }
        );
    }
    println!(
        "(each detector: its own score / the z of its most unusual class against the same class \
         of the other models{}; a model is suspect when one class reads z >= {} (combined: -log10 \
         of the smallest p-value against the other models, times the detectors); a model with no \
         others to read against, by ISCP's rule (above 1) or Neural Cleanse's (above 2))",
        if has_truth {
            " the manifest calls clean"
        } else {
            ""
        },
        by_class::FLAG_Z
    );
    Ok(())
}
