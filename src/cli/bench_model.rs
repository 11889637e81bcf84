//! `iscp bench --model FILE.pt`: the user's own TorchScript classifier, all classes, one positive
//! canvas, α 0.2, the released rule, PW at 1/2/3/5/10%: seconds per search (one by one and batched)
//! in process, and end to end as `iscp run` does it, optionally beside the sequential PyTorch
//! reference (`scripts/reference_search.py`) in the same run.

use super::bench_common::{agreement, canvas_job, print_machine};
use anyhow::{bail, Context};
use iscp_engine::amp::Precision;
use iscp_engine::canvas::{rank_canvases, CanvasKind};
use iscp_engine::data::{load_idx_dir, stratified_split, Dataset, Split, FASHION_MNIST_CLASSES};
use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::{search_batch, SearchJob, SearchOutcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The benchmark's sizes, as in the paper.
pub const SIZES: [f64; 5] = [0.01, 0.02, 0.03, 0.05, 0.10];
/// The benchmark's α.
pub const ALPHA: f64 = 0.2;

/// The spec `iscp run` gets for the benchmark's work.
pub fn bench_spec(model: &Path, data: &Path) -> String {
    let sizes: Vec<String> = SIZES.iter().map(|s| s.to_string()).collect();
    format!(
        "name = \"bench-model\"\nseed = 0\n\n[data]\nkind = \"fashion-mnist\"\npath = {data:?}\n\n\
         [[settings]]\nname = \"user\"\nkind = \"natural\"\nmodel = {model:?}\n\n\
         [search]\nclasses = \"all\"\ncanvases = [{{ kind = \"positive\", n = 1 }}]\n\
         alphas = [{ALPHA}]\nobjectives = [\"released\"]\nsizes = [{}]\n",
        sizes.join(", ")
    )
}

/// The Fashion-MNIST test set in `data`.
fn load_test(data: &Path) -> anyhow::Result<Dataset> {
    let names = FASHION_MNIST_CLASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok(load_idx_dir(data, Some(names))
        .with_context(|| format!("reading Fashion-MNIST from {}", data.display()))?
        .test)
}

/// Searches one by one and batched, in process; returns (one by one, batched) seconds per search.
fn searches(
    model_path: &Path,
    test: &Dataset,
    device: tch::Device,
) -> anyhow::Result<(usize, f64, f64)> {
    let meta = ModelMeta {
        arch: Arch::Torchscript,
        class_names: test.class_names.clone(),
        input_shape: test.image_shape(),
        normalize: None,
        test_accuracy: None,
    };
    let model = Model::load_torchscript(model_path, meta, device)?;
    let images = test.images.to_device(device);
    let labels = test.labels_vec();
    let split = stratified_split(&labels, test.num_classes(), 0.2, 0);
    let logits = model.predict_logits(&test.images, 1024)?;
    let jobs = positive_jobs(test, &logits, &labels, &split)?;
    let t = Instant::now();
    let mut alone = Vec::new();
    for job in &jobs {
        alone.extend(search_batch(
            &model,
            &images,
            std::slice::from_ref(job),
            &mut |_, _| {},
        ));
    }
    let one_by_one = t.elapsed().as_secs_f64() / jobs.len() as f64;
    let t = Instant::now();
    let batched = search_batch(&model, &images, &jobs, &mut |_, _| {});
    let together = t.elapsed().as_secs_f64() / jobs.len() as f64;
    let eval = Evaluator::new(&model, test, &logits, &split.search);
    let (j1, j5, worst_pw) = agreement(&eval, &jobs, &alone, &batched)?;
    println!(
        "batched vs one by one: lowest top-1% Jaccard {j1:.3}, top-5% {j5:.3}, largest PW \
         difference {worst_pw:.4}"
    );
    if device.is_cuda() {
        fp16_against_fp32(&model, &images, &eval, &jobs, &batched)?;
    }
    Ok((jobs.len(), one_by_one, together))
}

/// One search per class: its top positive canvas, α [`ALPHA`]; an error when a class has none.
fn positive_jobs(
    test: &Dataset,
    logits: &tch::Tensor,
    labels: &[i64],
    split: &Split,
) -> anyhow::Result<Vec<SearchJob>> {
    let mut jobs = Vec::new();
    for class in 0..test.num_classes() as i64 {
        let Some(&index) = rank_canvases(CanvasKind::Positive, logits, labels, class, 1, 0).first()
        else {
            bail!(
                "the model classifies no test image of class {class} correctly: no positive canvas"
            );
        };
        jobs.push(canvas_job(test, labels, split, class, index, ALPHA)?);
    }
    Ok(jobs)
}

/// The same batch under fp16 autocast: prints its seconds per search and how far it agrees with
/// the fp32 one (`batched`).
fn fp16_against_fp32(
    model: &Model,
    images: &tch::Tensor,
    eval: &Evaluator,
    jobs: &[SearchJob],
    batched: &[iscp_engine::Result<SearchOutcome>],
) -> anyhow::Result<()> {
    let half: Vec<SearchJob> = jobs
        .iter()
        .map(|j| {
            let mut h = j.shallow();
            h.cfg.precision = Precision::Fp16;
            h
        })
        .collect();
    let t = Instant::now();
    let halves = search_batch(model, images, &half, &mut |_, _| {});
    let per = t.elapsed().as_secs_f64() / jobs.len() as f64;
    let (j1, j5, worst) = agreement(eval, jobs, batched, &halves)?;
    println!(
        "fp16 autocast, batched: {per:.2} s per search; against fp32: lowest top-1% Jaccard \
         {j1:.3}, top-5% {j5:.3}, largest PW difference {worst:.4}"
    );
    Ok(())
}

/// CPU seconds (user, system) of the children this process has waited for so far.
fn children_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(u.ru_utime), s(u.ru_stime))
}

/// `iscp run` on the benchmark's spec in a fresh folder: (wall, user, system) seconds.
fn end_to_end(
    model: &Path,
    data: &Path,
    device: &str,
    threads: Option<usize>,
) -> anyhow::Result<(f64, f64, f64)> {
    let dir = std::env::temp_dir().join(format!("iscp-bench-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir, model, data, device, threads);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `iscp run` on the benchmark's spec, written into `dir`: (wall, user, system) seconds.
fn run_in(
    dir: &Path,
    model: &Path,
    data: &Path,
    device: &str,
    threads: Option<usize>,
) -> anyhow::Result<(f64, f64, f64)> {
    let spec = dir.join("bench-model.toml");
    let model = std::fs::canonicalize(model)?;
    let data = std::fs::canonicalize(data)?;
    std::fs::write(&spec, bench_spec(&model, &data))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(dir.join("results"))
        .arg("--quiet")
        .args(["--device", device]);
    if let Some(t) = threads {
        cmd.arg("--threads").arg(t.to_string());
    }
    let (u0, s0) = children_cpu();
    let t = Instant::now();
    let out = cmd.output().context("starting iscp run")?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "iscp run on the benchmark's spec failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (u1, s1) = children_cpu();
    Ok((wall, u1 - u0, s1 - s0))
}

/// The reference's figures: (seconds per search, seconds end to end), from its last JSON line.
fn reference(python: &Path, model: &Path, data: &Path) -> anyhow::Result<(f64, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reference_search.py");
    let out = Command::new(python)
        .arg(&script)
        .args(["search", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .output()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    if !out.status.success() {
        bail!(
            "the PyTorch reference failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(last).with_context(|| format!("the reference printed {last:?}"))?;
    let get = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("the reference's figures lack {k}: {last}"))
    };
    Ok((get("seconds_per_search")?, get("seconds_end_to_end")?))
}

/// Runs the whole benchmark and prints its figures.
pub fn bench_model(
    model: &Path,
    data: &Path,
    (device, device_name): (tch::Device, &str),
    threads: Option<usize>,
    python: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let test = load_test(data)?;
    print_machine(device_name);
    println!(
        "model {}: {} classes, one positive canvas each, α {ALPHA}, released rule, PW at 1/2/3/5/10%",
        model.display(),
        test.num_classes()
    );
    let (n, one, batched) = searches(model, &test, device)?;
    println!("per search: one by one {one:.2} s, batched ({n} at once) {batched:.2} s");
    let (wall, user, sys) = end_to_end(model, data, device_name, threads)?;
    println!("end to end (iscp run): {wall:.1} s wall, {user:.1} s user, {sys:.1} s system");
    if let Some(py) = python {
        let (per, total) = reference(py, model, data)?;
        println!("PyTorch reference (one search at a time): {per:.2} s per search, {total:.1} s end to end");
        println!(
            "speed-up over the reference: per search {:.2}x (goal 4x), end to end {:.2}x (goal 5x)",
            per / batched,
            total / wall
        );
    }
    Ok(())
}
