//! `iscp scan`: audit one model for backdoor-like classes (white and positive canvas searches per
//! class, the small pattern's predictive power, MAD anomaly index, a verdict, a table, a picture).

use super::data_arg::data_table;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use iscp_engine::data::DataSplits;
use iscp_engine::model::{load_artifact, Arch, Model, ModelMeta, Normalize};
use iscp_proto::Table;
use iscp_sweep::scan::{scan_model, verdict, write_scan, ScanOptions};
use iscp_sweep::spec::DataSpec;
use iscp_sweep::work::load_data;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The model: a TorchScript file (pixels in [0,1] in, logits out) or an iscp artifact (.iscpm).
    #[arg(long)]
    pub model: PathBuf,
    /// The data: a folder (IDX or CIFAR-10 binary files, detected) or a TOML file with a [data] table
    /// written as in a spec.
    #[arg(long)]
    pub data: PathBuf,
    /// The data kind of a folder, when detection is not enough (fashion-mnist gives class names).
    #[arg(long, value_parser = ["fashion-mnist", "idx", "cifar10"])]
    pub data_kind: Option<String>,
    /// Pattern size (fraction of the image) whose predictive power is compared across classes.
    #[arg(long, default_value_t = 0.01)]
    pub size: f64,
    /// Sparsity weight α of the search.
    #[arg(long, default_value_t = 0.2)]
    pub alpha: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Per-channel mean a TorchScript model expects (comma-separated), applied after mixing.
    #[arg(long, value_delimiter = ',', requires = "std")]
    pub mean: Option<Vec<f64>>,
    /// Per-channel std a TorchScript model expects (comma-separated).
    #[arg(long, value_delimiter = ',', requires = "mean")]
    pub std: Option<Vec<f64>>,
    /// Folder under which `<name>/scan/` and `<name>/images/` are written.
    #[arg(long, default_value = "results", env = "ISCP_RESULTS")]
    pub results: PathBuf,
    /// Name of the scan's folder.
    #[arg(long, default_value = "scan")]
    pub name: String,
}

/// The `[data]` table `--data` names, as a spec's.
fn data_spec(a: &ScanArgs) -> anyhow::Result<DataSpec> {
    let table = data_table(&a.data, a.data_kind.as_deref())?;
    toml::Value::Table(table)
        .try_into()
        .with_context(|| format!("{}: not a [data] table", a.data.display()))
}

fn load_model(a: &ScanArgs, data: &DataSplits, device: tch::Device) -> anyhow::Result<Model> {
    if a.model.extension().is_some_and(|e| e == "iscpm") {
        return Ok(load_artifact(&a.model, device)?);
    }
    let normalize = match (&a.mean, &a.std) {
        (Some(mean), Some(std)) => Some(Normalize {
            mean: mean.clone(),
            std: std.clone(),
        }),
        _ => None,
    };
    let meta = ModelMeta {
        arch: Arch::Torchscript,
        class_names: data.test.class_names.clone(),
        input_shape: data.test.image_shape(),
        normalize,
        test_accuracy: None,
    };
    Ok(Model::load_torchscript(&a.model, meta, device)?)
}

fn check(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    Ok(())
}

pub fn scan(a: ScanArgs) -> anyhow::Result<()> {
    if !(a.size > 0.0 && a.size <= 1.0) {
        bail!(
            "--size {} is impossible: a size is a fraction in (0, 1]",
            a.size
        );
    }
    check(&a.model)?;
    check(&a.data)?;
    let device = iscp_engine::parse_device(&a.device)?;
    iscp_engine::cuda::ensure(device)?;
    let data = load_data(&data_spec(&a)?, a.seed)?;
    let model = load_model(&a, &data, device)?;
    if model.num_classes() != data.test.num_classes()
        || model.meta.input_shape != data.test.image_shape()
    {
        bail!(
            "the model ({} classes, input {:?}) does not fit the data ({} classes, images {:?})",
            model.num_classes(),
            model.meta.input_shape,
            data.test.num_classes(),
            data.test.image_shape()
        );
    }
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template(
            "    scan [{bar:40.green/white}] {pos}/{len} steps  {per_sec}  ETA {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let opts = ScanOptions {
        size: a.size,
        alpha: a.alpha,
        seed: a.seed,
        ..Default::default()
    };
    let name = a
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    let (rows, pictures) = scan_model(&model, &name, &data, &opts, &mut |s, t| {
        bar.set_length(t as u64);
        bar.set_position(s as u64);
    })
    .map_err(|e| e.about_model(&a.model.display().to_string()))
    .with_context(|| format!("refusing to scan {}", a.model.display()))?;
    bar.finish_and_clear();
    let root = a.results.join(&a.name);
    write_scan(&root, &name, &rows, &pictures)?;
    println!(
        "{:>5}  {:<16} {:>9} {:>8}  canvas",
        "class", "name", "PW", "anomaly"
    );
    for r in &rows {
        println!(
            "{:>5}  {:<16} {:>9.3} {:>8.2}  {}{}",
            r.class,
            r.class_name,
            r.pw,
            r.anomaly_index,
            r.canvas_kind,
            if r.flagged { "  FLAGGED" } else { "" }
        );
    }
    println!("verdict: {}", verdict(&rows));
    println!(
        "table: {}  picture: {}",
        Table::Scan.dir(&root).display(),
        root.join("images")
            .join(format!("scan-{name}.png"))
            .display()
    );
    Ok(())
}
