//! `iscp bench --model FILE.pt`: the user's own TorchScript classifier, all classes, one positive
//! canvas, α 0.2, the released rule, PW at 1/2/3/5/10%: seconds per search (one by one and batched)
//! in process, and end to end as `iscp run` does it, optionally beside the sequential PyTorch
//! reference (`scripts/reference_search.py`) in the same run.

use super::bench_common::{
    canvas_job, describe_paired, largest_pw_difference, paired_pw, print_machine, pw_table,
    selections,
};
use anyhow::{bail, Context};
use iscp_engine::amp::{logits_in, Precision};
use iscp_engine::canvas::{rank_canvases, CanvasKind};
use iscp_engine::data::{load_idx_dir, stratified_split, Dataset, Split, FASHION_MNIST_CLASSES};
use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::pattern::{binarize, pattern_k, Evaluator};
use iscp_engine::search::{search_batch, SearchJob, SearchOutcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The benchmark's sizes, as in the paper.
pub const SIZES: [f64; 5] = [0.01, 0.02, 0.03, 0.05, 0.10];
/// The benchmark's α.
pub const ALPHA: f64 = 0.2;

/// The spec `iscp run` gets for the benchmark's work, its passes in `precision`.
pub fn bench_spec(model: &Path, data: &Path, precision: Precision) -> String {
    let sizes: Vec<String> = SIZES.iter().map(|s| s.to_string()).collect();
    format!(
        "name = \"bench-model\"\nseed = 0\n\n[data]\nkind = \"fashion-mnist\"\npath = {data:?}\n\n\
         [[settings]]\nname = \"user\"\nkind = \"natural\"\nmodel = {model:?}\n\n\
         [search]\nclasses = \"all\"\ncanvases = [{{ kind = \"positive\", n = 1 }}]\n\
         alphas = [{ALPHA}]\nobjectives = [\"released\"]\nsizes = [{}]\n\n\
         [run]\nprecision = \"{}\"\n",
        sizes.join(", "),
        precision.name()
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

/// Searches one by one and batched in fp32, then batched in each reduced precision of
/// `precisions`, in process, `canvases` positive canvases per class; prints how each set's PW
/// compares with the fp32 batch's, paired search by search (one by one against batched is the
/// rounding floor: the same arithmetic in other batch shapes); returns (searches, one by one,
/// batched) seconds per search in fp32.
fn searches(
    model_path: &Path,
    test: &Dataset,
    device: tch::Device,
    precisions: &[Precision],
    canvases: usize,
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
    let jobs = positive_jobs(test, &logits, &labels, &split, canvases)?;
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
    let eval = Evaluator::new(&model, test, &logits, &split.search).with_batch(EVAL_BATCH);
    let (j1, j5) = selections(&alone, &batched)?;
    let pw_batched = pw_table(&eval, &jobs, &batched, &SIZES)?;
    let pw_alone = pw_table(&eval, &jobs, &alone, &SIZES)?;
    println!(
        "batched vs one by one: lowest top-1% Jaccard {j1:.3}, top-5% {j5:.3}, largest PW \
         difference {:.4}",
        largest_pw_difference(&pw_alone, &pw_batched)
    );
    println!(
        "  fp32 {}",
        describe_paired("batched", "one by one", &paired_pw(&pw_batched, &pw_alone))
    );
    for &p in precisions.iter().filter(|&&p| p != Precision::Fp32) {
        let mut reduced = Model::load_torchscript(model_path, model.meta.clone(), device)?;
        reduced.set_precision(p);
        let base = Fp32Side {
            model: &model,
            eval: &eval,
            batched: &batched,
            pw: &pw_batched,
            per_search: together,
        };
        reduced_against_fp32(&base, &reduced, &images, test, &jobs, p)?;
    }
    Ok((jobs.len(), one_by_one, together))
}

/// Images per forward pass when the benchmark scores masks (the CPU default of `run.eval_batch`).
const EVAL_BATCH: i64 = 256;

/// `canvases` searches per class: its top positive canvases, α [`ALPHA`]; an error when a class
/// has none.
fn positive_jobs(
    test: &Dataset,
    logits: &tch::Tensor,
    labels: &[i64],
    split: &Split,
    canvases: usize,
) -> anyhow::Result<Vec<SearchJob>> {
    let mut jobs = Vec::new();
    for class in 0..test.num_classes() as i64 {
        let ranked = rank_canvases(CanvasKind::Positive, logits, labels, class, canvases, 0);
        if ranked.is_empty() {
            bail!(
                "the model classifies no test image of class {class} correctly: no positive canvas"
            );
        }
        for index in ranked {
            jobs.push(canvas_job(test, labels, split, class, index, ALPHA)?);
        }
    }
    Ok(jobs)
}

/// The fp32 side of a precision comparison.
struct Fp32Side<'a> {
    model: &'a Model,
    eval: &'a Evaluator<'a>,
    batched: &'a [iscp_engine::Result<SearchOutcome>],
    /// PW of the batched masks, `[size][search]` at [`SIZES`].
    pw: &'a [Vec<f64>],
    per_search: f64,
}

/// The same batch in `precision` on `reduced` (the model converted, or fp16 autocast): prints its
/// seconds per search and how far it agrees with fp32: the selected pixels (top-1%/5% Jaccard), PW
/// of both masks on the fp32 model, and the share of argmax decisions that change on the test
/// images, clean and with each fp32 mask's 1% and 5% patterns attached.
fn reduced_against_fp32(
    fp32: &Fp32Side,
    reduced: &Model,
    images: &tch::Tensor,
    test: &Dataset,
    jobs: &[SearchJob],
    precision: Precision,
) -> anyhow::Result<()> {
    let half: Vec<SearchJob> = jobs
        .iter()
        .map(|j| {
            let mut h = j.shallow();
            h.cfg.precision = precision;
            h
        })
        .collect();
    let t = Instant::now();
    let halves = search_batch(reduced, images, &half, &mut |_, _| {});
    let per = t.elapsed().as_secs_f64() / jobs.len() as f64;
    let (j1, j5) = selections(fp32.batched, &halves)?;
    let pw = pw_table(fp32.eval, jobs, &halves, &SIZES)?;
    let worst = largest_pw_difference(fp32.pw, &pw);
    let (clean, patterned) = decisions_changed(fp32, reduced, test, jobs, precision)?;
    println!(
        "{}, batched: {per:.2} s per search ({:.2}x fp32); against fp32: lowest top-1% Jaccard \
         {j1:.3}, top-5% {j5:.3}, largest PW difference {worst:.4}; argmax decisions changed: \
         {:.3}% of clean test images, {:.3}% with patterns attached",
        precision.name(),
        fp32.per_search / per,
        100.0 * clean,
        100.0 * patterned
    );
    println!(
        "  {}",
        describe_paired("fp32", precision.name(), &paired_pw(fp32.pw, &pw))
    );
    Ok(())
}

/// Test images the decisions are compared on, with patterns attached.
const DECISION_IMAGES: i64 = 1000;

/// The shares of argmax decisions that differ between fp32 and `precision`: on the whole clean test
/// set, and on the first [`DECISION_IMAGES`] test images with each search's fp32 mask binarised at
/// 1% and 5% attached.
fn decisions_changed(
    fp32: &Fp32Side,
    reduced: &Model,
    test: &Dataset,
    jobs: &[SearchJob],
    precision: Precision,
) -> anyhow::Result<(f64, f64)> {
    let predict = |m: &Model, p: Precision, x: &tch::Tensor| -> anyhow::Result<tch::Tensor> {
        let mut out = Vec::new();
        tch::no_grad(|| -> anyhow::Result<()> {
            for chunk in x.split(1024, 0) {
                let l = logits_in(m, &chunk.to_device(m.device()), p)?;
                out.push(l.argmax(1, false).to_device(tch::Device::Cpu));
            }
            Ok(())
        })?;
        Ok(tch::Tensor::cat(&out, 0))
    };
    let differ = |a: &tch::Tensor, b: &tch::Tensor| -> (f64, f64) {
        let n = a.size()[0] as f64;
        (a.ne_tensor(b).sum(tch::Kind::Float).double_value(&[]), n)
    };
    let clean = differ(
        &predict(fp32.model, Precision::Fp32, &test.images)?,
        &predict(reduced, precision, &test.images)?,
    );
    let x = test
        .images
        .narrow(0, 0, DECISION_IMAGES.min(test.len() as i64));
    let (mut changed, mut total) = (0.0, 0.0);
    for (job, out) in jobs.iter().zip(fp32.batched) {
        let Ok(out) = out else { continue };
        for size in [0.01, 0.05] {
            let bin = binarize(&out.mask, pattern_k(size, out.mask.len()));
            let [_, h, w] = test.image_shape();
            let m = tch::Tensor::from_slice(&bin).view([1, h, w]);
            let mixed = &m * &job.canvas + (1.0 - &m) * &x;
            let (c, n) = differ(
                &predict(fp32.model, Precision::Fp32, &mixed)?,
                &predict(reduced, precision, &mixed)?,
            );
            changed += c;
            total += n;
        }
    }
    Ok((clean.0 / clean.1, changed / total.max(1.0)))
}

/// CPU seconds (user, system) of the children this process has waited for so far.
fn children_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(u.ru_utime), s(u.ru_stime))
}

/// What one end-to-end run measured.
struct EndToEnd {
    wall: f64,
    user: f64,
    system: f64,
    /// Mean PW of the best pattern per size, in [`SIZES`] order.
    pw: Vec<f64>,
}

/// `iscp run` on the benchmark's spec in a fresh folder, in `precision`.
fn end_to_end(
    model: &Path,
    data: &Path,
    device: &str,
    threads: Option<usize>,
    precision: Precision,
) -> anyhow::Result<EndToEnd> {
    let dir = std::env::temp_dir().join(format!("iscp-bench-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir, model, data, device, threads, precision).and_then(|(w, u, s)| {
        Ok(EndToEnd {
            wall: w,
            user: u,
            system: s,
            pw: mean_pw(&dir.join("results").join("bench-model"))?,
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Mean PW of the best pattern at each of [`SIZES`], from a finished run's `patterns` table.
fn mean_pw(root: &Path) -> anyhow::Result<Vec<f64>> {
    let rows = iscp_sweep::tables::read_patterns(&iscp_proto::Table::Patterns.dir(root))?;
    Ok(SIZES
        .iter()
        .map(|&size| {
            let pws: Vec<f64> = rows
                .iter()
                .filter(|r| r.is_best && (r.size - size).abs() < 1e-9)
                .filter_map(|r| r.pw)
                .collect();
            pws.iter().sum::<f64>() / pws.len().max(1) as f64
        })
        .collect())
}

/// `iscp run` on the benchmark's spec, written into `dir`: (wall, user, system) seconds.
fn run_in(
    dir: &Path,
    model: &Path,
    data: &Path,
    device: &str,
    threads: Option<usize>,
    precision: Precision,
) -> anyhow::Result<(f64, f64, f64)> {
    let spec = dir.join("bench-model.toml");
    let model = std::fs::canonicalize(model)?;
    let data = std::fs::canonicalize(data)?;
    std::fs::write(&spec, bench_spec(&model, &data, precision))?;
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
    let mut cmd = Command::new(python);
    cmd.arg(&script)
        .args(["search", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data);
    // The reference runs as its user would start it, with libgomp's own waiting.
    crate::omp_wait::user_environment(&mut cmd);
    let out = cmd
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
    asked: &[Precision],
    canvases: usize,
) -> anyhow::Result<()> {
    let test = load_test(data)?;
    print_machine(device_name);
    let precisions = precisions_to_measure(asked, device);
    println!(
        "model {}: {} classes, α {ALPHA}, released rule, PW at 1/2/3/5/10%; in process its top \
         {canvases} positive canvas(es) a class, end to end the top one",
        model.display(),
        test.num_classes()
    );
    let (n, one, batched) = searches(model, &test, device, &precisions, canvases)?;
    println!("fp32 per search: one by one {one:.2} s, batched ({n} at once) {batched:.2} s");
    let mut runs = Vec::new();
    for &p in &precisions {
        let e = end_to_end(model, data, device_name, threads, p)?;
        let pw: Vec<String> = e.pw.iter().map(|v| format!("{v:.3}")).collect();
        println!(
            "end to end (iscp run, {}): {:.1} s wall, {:.1} s user, {:.1} s system; mean PW at \
             1/2/3/5/10%: {}",
            p.name(),
            e.wall,
            e.user,
            e.system,
            pw.join(" / ")
        );
        if let Some((_, base)) = runs.first() {
            let base: &EndToEnd = base;
            let worst = base
                .pw
                .iter()
                .zip(&e.pw)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            println!(
                "  {} against fp32: {:.2}x faster end to end, largest mean-PW difference over the \
                 sizes {worst:.4}",
                p.name(),
                base.wall / e.wall
            );
        }
        runs.push((p, e));
    }
    if let Some(py) = python {
        let (per, total) = reference(py, model, data)?;
        println!("PyTorch reference (one search at a time): {per:.2} s per search, {total:.1} s end to end");
        for (p, e) in &runs {
            println!(
                "speed-up over the reference, {}: end to end {:.2}x{}",
                p.name(),
                total / e.wall,
                match p {
                    Precision::Fp32 => format!(", per search {:.2}x", per / batched),
                    _ => String::new(),
                }
            );
        }
    }
    Ok(())
}

/// The precisions to measure: fp32 first, then those asked for that this device has (all it has
/// when none is asked for), each said when it is skipped.
fn precisions_to_measure(asked: &[Precision], device: tch::Device) -> Vec<Precision> {
    let wanted: Vec<Precision> = match asked {
        [] => vec![Precision::Bf16, Precision::Fp16],
        a => a.to_vec(),
    };
    let mut out = vec![Precision::Fp32];
    for p in wanted {
        match p.on(device) {
            (q, None) if !out.contains(&q) => out.push(q),
            (_, Some(why)) if !asked.is_empty() => println!("{}: {why}; not measured", p.name()),
            _ => {}
        }
    }
    out
}
