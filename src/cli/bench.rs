//! `iscp bench`: seconds per ISCP search for the small CNN on this machine, one by one and batched
//! (a benchmark, not a test).

use super::bench_common::{agreement, canvas_job, print_machine};
use iscp_engine::amp::Precision;
use iscp_engine::canvas::{rank_canvases, CanvasKind};
use iscp_engine::data::{
    load_idx_dir, stratified_split, synthetic, DataSplits, Dataset, Split, SyntheticConfig,
    FASHION_MNIST_CLASSES,
};
use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::{search_batch, SearchJob};
use iscp_engine::train::{train, TrainConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Your own TorchScript classifier (pixels in [0,1] in, logits out, 1×28×28 for
    /// Fashion-MNIST): time all its classes, one positive canvas each, α 0.2, PW at 1/2/3/5/10%,
    /// per search (one by one and batched) and end to end through `iscp run`. Without it the
    /// bench trains the built-in small CNN for one epoch and times 24 searches.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// With --model: also run the sequential PyTorch reference (scripts/reference_search.py) with
    /// this python (one that has torch 2.11.0) and print the speed-ups over it.
    #[arg(long, requires = "model")]
    pub reference_python: Option<PathBuf>,
    /// With --model: the reduced precisions to compare with fp32, comma-separated (bf16, fp16).
    /// Default: every one this device has (bf16 on CPUs with bf16 instructions and on CUDA, fp16
    /// on CUDA). Each is timed in process and end to end, with its agreement with fp32.
    #[arg(long, requires = "model", value_delimiter = ',', value_parser = parse_precision)]
    pub precision: Vec<Precision>,
    /// Fashion-MNIST folder (IDX files); synthetic 28×28 data is used when it is missing (not
    /// with --model, which needs the real test set).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// How many canvases. Without --model: the top positive canvas of that many classes, each
    /// searched at 3 alphas (default 8: the 24 searches of docs/benchmarks.md). With --model: the
    /// top positive canvases of every class searched in process (default 1), so that the mean PW
    /// per size of fp32, of the same in other batch shapes and of each reduced precision is taken
    /// over enough searches to tell a difference from the searches' own spread (the end-to-end
    /// run keeps one a class, as the PyTorch reference does).
    #[arg(long)]
    pub canvases: Option<usize>,
    /// Device to measure (cpu, cuda, cuda:N).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A spec: time its models, print `iscp plan`'s estimate per unit kind, run it in a fresh
    /// folder, and print what each kind took beside its estimate, the total beside the plan's,
    /// and the progress ETA at 10/25/50/75% of the work beside the time actually left.
    #[arg(long, conflicts_with = "model")]
    pub estimates: Option<PathBuf>,
    /// Also measure batched searches per minute for the CIFAR ResNet-18 and ResNet-50 (32×32);
    /// on by default on a CUDA device. Slow on a CPU: lower --resnet-steps there.
    #[arg(long)]
    pub resnets: bool,
    /// Steps timed for each ResNet (each of --resnet-k × 4 images).
    #[arg(long, default_value_t = 20)]
    pub resnet_steps: usize,
    /// Searches batched together for the ResNet figures: one K or several, comma-separated
    /// (e.g. 32,64,128,256), each timed in turn.
    #[arg(long, value_delimiter = ',', default_value = "24")]
    pub resnet_k: Vec<usize>,
}

/// Runs the benchmark: the user's model when one is given, else the small CNN (and the ResNets).
pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let device = iscp_engine::parse_device(&a.device)?;
    iscp_engine::cuda::ensure(device)?;
    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    if let Some(spec) = &a.estimates {
        return super::bench_estimates::bench_estimates(spec, &a.device);
    }
    if let Some(model) = &a.model {
        return super::bench_model::bench_model(
            model,
            &a.data,
            (device, &a.device),
            a.threads,
            a.reference_python.as_ref(),
            &a.precision,
            a.canvases.unwrap_or(1).max(1),
        );
    }
    let (data, source) = load_data(&a.data)?;
    print_machine(&a.device);
    println!("data: {source}; {} test images", data.test.len());
    let mut trained = train_small_cnn(&data, device)?;
    let model = trained.remove(0);
    let labels = data.test.labels_vec();
    let split = stratified_split(&labels, data.test.num_classes(), 0.2, 0);
    let logits = model.predict_logits(&data.test.images, 1024)?;
    let images = data.test.images.to_device(device);
    let jobs = small_cnn_jobs(
        &data.test,
        &logits,
        &labels,
        &split,
        a.canvases.unwrap_or(8),
    )?;
    println!(
        "{} searches, T=5, B=4, about {} images in each D_n",
        jobs.len(),
        jobs[0].pool.len()
    );
    time_searches(&model, &images, &data.test, &logits, &split, &jobs)?;
    if a.resnets || device.is_cuda() {
        let ks: Vec<usize> = a.resnet_k.iter().map(|&k| k.max(1)).collect();
        super::bench_resnet::resnet_figures(device, &ks, a.resnet_steps.max(1))?;
    }
    Ok(())
}

/// A precision by its name in specs (`fp32`, `bf16`, `fp16`).
fn parse_precision(s: &str) -> Result<Precision, String> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_string()))
        .map_err(|_| format!("unknown precision {s:?}: fp32, bf16 or fp16"))
}

/// Fashion-MNIST from `dir` with the source's description, or synthetic 28×28 data when it is
/// missing.
fn load_data(dir: &Path) -> anyhow::Result<(DataSplits, String)> {
    let names = FASHION_MNIST_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    match load_idx_dir(dir, Some(names)) {
        Ok(d) => Ok((d, format!("Fashion-MNIST from {}", dir.display()))),
        Err(e) => {
            eprintln!("bench: {e}; using synthetic 28×28 data instead");
            let cfg = SyntheticConfig {
                size: 28,
                train: 6000,
                test: 10000,
                ..Default::default()
            };
            Ok((synthetic(&cfg)?, "synthetic 28×28".into()))
        }
    }
}

/// Trains the small CNN for one epoch in fp32 (and, on CUDA, one with mixed precision beside it),
/// printing each one's time and accuracy; returns the models, the fp32 one first.
fn train_small_cnn(data: &DataSplits, device: tch::Device) -> anyhow::Result<Vec<Model>> {
    let meta = ModelMeta {
        arch: Arch::SmallCnn,
        class_names: data.train.class_names.clone(),
        input_shape: data.train.image_shape(),
        normalize: None,
        test_accuracy: None,
    };
    // One epoch in fp32; on CUDA also one with mixed precision (autocast + loss scaling) beside it.
    let precisions: &[bool] = match device.is_cuda() {
        true => &[false, true],
        false => &[false],
    };
    let mut trained = Vec::new();
    for &mixed_precision in precisions {
        tch::manual_seed(0);
        let mut model = Model::new_builtin(meta.clone(), device)?;
        let t0 = Instant::now();
        train(
            &mut model,
            &data.train,
            &TrainConfig {
                epochs: 1,
                mixed_precision,
                ..Default::default()
            },
            &mut |_, _, _| {},
        )?;
        let seconds = t0.elapsed().as_secs_f64();
        let accuracy = model.accuracy(&data.test.images, &data.test.labels)?;
        println!(
            "train small CNN, 1 epoch on {} images{}: {seconds:.1}s, test accuracy {accuracy:.4}",
            data.train.len(),
            if mixed_precision {
                " with mixed precision"
            } else {
                " in fp32"
            },
        );
        trained.push(model);
    }
    Ok(trained)
}

/// The searches timed: the top positive canvas of the first `canvases` classes × 3 alphas.
fn small_cnn_jobs(
    test: &Dataset,
    logits: &tch::Tensor,
    labels: &[i64],
    split: &Split,
    canvases: usize,
) -> anyhow::Result<Vec<SearchJob>> {
    // 8 canvases (the top positive canvas of classes 0–7) × 3 alphas, T=5, B=4.
    let mut jobs = Vec::new();
    for class in 0..canvases.min(test.num_classes()) as i64 {
        let index = rank_canvases(CanvasKind::Positive, logits, labels, class, 1, 0)
            .first()
            .copied()
            .unwrap_or(-1);
        for alpha in [0.1, 0.2, 0.3] {
            jobs.push(canvas_job(test, labels, split, class, index, alpha)?);
        }
    }
    Ok(jobs)
}

/// Times `jobs` one by one and batched, and prints the seconds per search, the speed-up and how
/// far the two agree.
fn time_searches(
    model: &Model,
    images: &tch::Tensor,
    test: &Dataset,
    logits: &tch::Tensor,
    split: &Split,
    jobs: &[SearchJob],
) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut alone = Vec::new();
    for job in jobs {
        alone.push(
            search_batch(model, images, std::slice::from_ref(job), &mut |_, _| {}).remove(0)?,
        );
    }
    let one_by_one = t.elapsed().as_secs_f64() / jobs.len() as f64;
    println!("one by one: {one_by_one:.3} s per search");
    let t = Instant::now();
    let batched = search_batch(model, images, jobs, &mut |_, _| {});
    let together = t.elapsed().as_secs_f64() / jobs.len() as f64;
    println!(
        "batched ({} at once): {together:.3} s per search",
        jobs.len()
    );
    let eval = Evaluator::new(model, test, logits, &split.search).with_batch(1024);
    let alone: Vec<_> = alone.into_iter().map(Ok).collect();
    let (j1, j5, worst_pw) = agreement(&eval, jobs, &alone, &batched)?;
    println!(
        "speed-up: {:.2}x; batched vs one by one: lowest top-1% Jaccard {j1:.3}, lowest top-5% \
         Jaccard {j5:.3}, largest PW difference {worst_pw:.4}",
        one_by_one / together
    );
    Ok(())
}
