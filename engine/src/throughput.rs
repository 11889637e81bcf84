//! A model's measured speed on its device: images a second through evaluation's forward passes,
//! through batched search steps (forward and backward to the input, as the searches run them,
//! lanes included) and through training steps. What `iscp plan`, the progress ETA and the `models`
//! table use instead of an assumed multiply-add rate: a model's cost is timed, not guessed from
//! its architecture's name.
//!
//! The inputs are random pixels: a pass costs the same whatever the pixels are, and the model's
//! weights need not be trained (a fresh built-in model times like a trained one).

use crate::model::Model;
use crate::search::{search_batch, SearchConfig, SearchJob};
use crate::Result;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Images a second through each kind of pass.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Throughput {
    /// No-grad forward passes at the evaluation's batch (evaluations, clean predictions).
    pub forward: f64,
    /// Search steps: forward and backward to the input, searches batched as the worker batches
    /// them (searches, and the detectors' optimisations).
    pub search: f64,
    /// Training steps (forward in training mode, backward to the parameters); None when not
    /// measured (TorchScript models are not trained here).
    pub train: Option<f64>,
    /// The detectors' steps: one optimisation batched over every class (Neural Cleanse's, with
    /// the intra-op threads shared rather than lanes), images a second; None when not measured
    /// (the search rate stands in).
    #[serde(default)]
    pub detect: Option<f64>,
}

/// How a measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct MeasureConfig {
    /// Images in a forward batch (at most the evaluation's batch).
    pub forward_batch: i64,
    /// Searches batched together, each of 4 images a step (the released rule's B).
    pub searches: usize,
    /// Images in a training batch; 0 skips training.
    pub train_batch: i64,
    /// Clean images a detector step takes for each class (Neural Cleanse's batch); 0 skips it.
    pub detect_batch: usize,
    /// Each kind of pass is repeated until it took at least this long (after one warm-up).
    pub min_seconds: f64,
    /// The most device memory one timed run may take, by `memory::bytes_per_image`'s estimate:
    /// batches shrink to fit, and a model whose one image needs more is not timed (a spec of
    /// huge images must not take the coordinator down while it is only being planned).
    pub max_bytes: u64,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            forward_batch: 256,
            searches: 24,
            train_batch: 128,
            detect_batch: 0,
            min_seconds: 0.3,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// 256 MB: a timed run's memory at most, by default.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// Images per step of a search (the released rule's B).
const SEARCH_BATCH: usize = 4;

/// Times `model`'s passes on its device: training first when its parameters are not frozen (a
/// fresh built-in model) and `train_batch` > 0; then it freezes the model, converts it to
/// `precision` (`Model::set_precision`) and times forward passes and batched searches. Batches
/// shrink for a large model so that each kind of pass takes about `min_seconds` (a 224×224
/// ResNet-50 on a CPU costs a tenth of a second an image).
pub fn measure(
    model: &mut Model,
    cfg: &MeasureConfig,
    precision: crate::amp::Precision,
) -> Result<Throughput> {
    let device = model.device();
    let [c, h, w] = model.meta.input_shape;
    let cfg = fit(model, cfg)?;
    let params = model
        .var_store()
        .map(|vs| vs.trainable_variables())
        .unwrap_or_default();
    let train = match cfg.train_batch > 0 && params.iter().any(|p| p.requires_grad()) {
        true => Some(train_rate(model, &cfg, &params)?),
        false => None,
    };
    model.freeze();
    model.set_precision(precision);
    let x = Tensor::rand([cfg.forward_batch, c, h, w], (Kind::Float, device));
    let forward = forward_rate(model, &x, cfg.min_seconds)?;
    let search = search_rate(model, &cfg)?;
    let detect = match cfg.detect_batch {
        0 => None,
        _ => Some(detect_rate(model, &cfg)?),
    };
    Ok(Throughput {
        forward,
        search,
        train,
        detect,
    })
}

/// `cfg` with its batches cut so that one run of each kind of pass fits `max_bytes` and costs about
/// `min_seconds` at the model's forward speed (timed here at growing batches, once one image is
/// known to fit).
fn fit(model: &Model, cfg: &MeasureConfig) -> Result<MeasureConfig> {
    let per_image = crate::memory::bytes_per_image(&model.meta).max(1);
    if per_image > cfg.max_bytes {
        return Err(crate::EngineError::Invalid(format!(
            "one {:?} image takes about {} MB through this model, more than the {} MB a timing \
             may use: not timed",
            model.meta.input_shape,
            per_image >> 20,
            cfg.max_bytes >> 20
        )));
    }
    let fits = (cfg.max_bytes / per_image) as f64;
    let [c, h, w] = model.meta.input_shape;
    // Seconds an image at the largest batch timed so far: batches grow 4× from one image while a
    // pass takes under an eighth of `min_seconds`, so a small model is judged at a batch where
    // it is fast (a 1-image pass can cost 20× an image's share of a batch of 1,000) and a huge
    // one never runs a batch much longer than `min_seconds`.
    let want = (cfg.forward_batch.max(1) as f64).min(fits).max(1.0) as i64;
    let mut batch = 1i64;
    let per_image = loop {
        let x = Tensor::rand([batch, c, h, w], (Kind::Float, model.device()));
        let per_image = 1.0 / forward_rate(model, &x, 0.0)?;
        if batch >= want || per_image * batch as f64 >= cfg.min_seconds / 8.0 {
            break per_image;
        }
        batch = (batch * 4).min(want);
    };
    let one = 1.0 / per_image;
    // Images (forward equivalents) one run may push through; a backward pass counts 2 more.
    let budget = (cfg.min_seconds * one).max(1.0).min(fits);
    let cap = |want: f64, per: f64| (want.min(budget / per)).floor().max(1.0);
    Ok(MeasureConfig {
        forward_batch: cap(cfg.forward_batch.max(1) as f64, 1.0) as i64,
        // Two steps of B images each, forward and backward.
        searches: cap(cfg.searches.max(1) as f64, (2 * SEARCH_BATCH * 3) as f64) as usize,
        train_batch: match cfg.train_batch {
            0 => 0,
            b => cap(b as f64, 3.0) as i64,
        },
        // A step of every class at once, forward and backward.
        detect_batch: match cfg.detect_batch {
            0 => 0,
            b => cap(b as f64, 3.0 * model.num_classes().max(1) as f64) as usize,
        },
        min_seconds: cfg.min_seconds,
        max_bytes: cfg.max_bytes,
    })
}

/// Images a second through no-grad forward passes of the batch `x`.
fn forward_rate(model: &Model, x: &Tensor, min_seconds: f64) -> Result<f64> {
    rate(min_seconds, model.device(), |reps| {
        tch::no_grad(|| -> Result<f64> {
            for _ in 0..reps {
                let _ = model.logits(x)?;
            }
            Ok((reps as i64 * x.size()[0]) as f64)
        })
    })
}

/// Runs `f(reps)` (which returns the images it pushed through) twice to warm up (TorchScript's
/// executor profiles a graph's first run and optimises it on the second), then with reps growing
/// until one run took `min_seconds`; images a second of the faster of that run and one more at
/// the same reps, so that one stalled run (a libtorch thread waiting for a core another process
/// holds for a moment) does not make the rate. A machine kept busy by another process slows every
/// run, by up to hundreds of times: `iscp plan` warns then.
fn rate(min_seconds: f64, device: Device, mut f: impl FnMut(usize) -> Result<f64>) -> Result<f64> {
    f(1)?;
    f(1)?;
    let mut reps = 1;
    let mut timed = |reps: usize| -> Result<(f64, f64)> {
        let t = Instant::now();
        let images = f(reps)?;
        if device.is_cuda() {
            tch::Cuda::synchronize(device_index(device));
        }
        Ok((images, t.elapsed().as_secs_f64()))
    };
    loop {
        let (images, dt) = timed(reps)?;
        if dt >= min_seconds || reps >= 1 << 12 {
            let (again, dt2) = timed(reps)?;
            return Ok((images / dt.max(1e-9)).max(again / dt2.max(1e-9)));
        }
        // Aim just past the target in one go when the run was long enough to time.
        reps = if dt > min_seconds / 16.0 {
            ((reps as f64 * min_seconds * 1.2 / dt).ceil() as usize).max(reps + 1)
        } else {
            reps * 4
        };
    }
}

fn device_index(device: Device) -> i64 {
    match device {
        Device::Cuda(i) => i as i64,
        _ => 0,
    }
}

/// Batched searches on random images, `steps` steps each: what the worker runs for a lease of
/// searches (lanes on the CPU, one batched optimisation on a GPU).
fn search_rate(model: &Model, cfg: &MeasureConfig) -> Result<f64> {
    let [c, h, w] = model.meta.input_shape;
    let k = model.num_classes().max(2) as i64;
    let device = model.device();
    let pool_images = 64i64;
    let images = Tensor::rand([pool_images, c, h, w], (Kind::Float, device));
    let jobs = |steps: usize| -> Vec<SearchJob> {
        (0..cfg.searches.max(1))
            .map(|i| SearchJob {
                target: i as i64 % k,
                canvas: Tensor::rand([c, h, w], (Kind::Float, Device::Cpu)),
                pool: (0..(steps * SEARCH_BATCH) as i64)
                    .map(|r| r % pool_images)
                    .collect(),
                cfg: SearchConfig {
                    epochs: 1,
                    batch: SEARCH_BATCH,
                    seed: i as u64,
                    ..Default::default()
                },
            })
            .collect()
    };
    rate(cfg.min_seconds, device, |steps| {
        let jobs = jobs(steps.max(2));
        for r in search_batch(model, &images, &jobs, &mut |_, _| {}) {
            r?;
        }
        Ok((jobs.len() * steps.max(2) * SEARCH_BATCH) as f64)
    })
}

/// Neural Cleanse on random images, every class at once, two steps an epoch: the detectors'
/// kind of step (MM-BD and the UAP scan also optimise every class in one batch).
fn detect_rate(model: &Model, cfg: &MeasureConfig) -> Result<f64> {
    let [c, h, w] = model.meta.input_shape;
    let batch = cfg.detect_batch.max(1);
    let k = model.num_classes().max(1);
    let clean = Tensor::rand([2 * batch as i64, c, h, w], (Kind::Float, model.device()));
    rate(cfg.min_seconds, model.device(), |epochs| {
        let nc = crate::cleanse::CleanseConfig {
            epochs,
            batch,
            labels_at_once: k,
            ..Default::default()
        };
        crate::cleanse::reverse_all(model, &clean, &nc, &mut |_, _| {})?;
        Ok((epochs * 2 * batch * k) as f64)
    })
}

/// Training steps' forward and backward passes (no optimiser step: the weights stay as they are).
fn train_rate(model: &Model, cfg: &MeasureConfig, params: &[Tensor]) -> Result<f64> {
    let [c, h, w] = model.meta.input_shape;
    let device = model.device();
    let n = cfg.train_batch;
    let x = Tensor::rand([n, c, h, w], (Kind::Float, device));
    let y = Tensor::randint(
        model.num_classes().max(1) as i64,
        [n],
        (Kind::Int64, device),
    );
    let params: Vec<&Tensor> = params.iter().collect();
    rate(cfg.min_seconds, device, |reps| {
        for _ in 0..reps {
            let loss = model.logits_train(&x).cross_entropy_for_logits(&y);
            crate::grad::grads_or_zero(&loss, &params)?;
        }
        Ok((reps as i64 * n) as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, ModelMeta};

    #[test]
    fn a_stalled_run_does_not_make_the_rate() {
        // The first timed run (after two warm-ups) stalls for 400 ms; the rest take 2 ms a rep.
        let mut calls = 0;
        let r = rate(0.1, Device::Cpu, |reps| {
            calls += 1;
            let ms = if calls == 3 { 400 } else { 2 * reps as u64 };
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(reps as f64 * 100.0)
        })
        .unwrap();
        // 100 images in 2 ms is 50,000 a second; the stalled run alone would say 250.
        assert!(r > 10_000.0, "{r}");
    }

    #[test]
    fn a_fresh_model_times_every_pass_and_ends_frozen() {
        let meta = ModelMeta {
            arch: Arch::SmallCnn,
            class_names: (0..3).map(|c| c.to_string()).collect(),
            input_shape: [1, 8, 8],
            normalize: None,
            test_accuracy: None,
        };
        let mut model = Model::new_builtin(meta, Device::Cpu).unwrap();
        let cfg = MeasureConfig {
            forward_batch: 16,
            searches: 3,
            train_batch: 8,
            detect_batch: 4,
            min_seconds: 0.01,
            max_bytes: DEFAULT_MAX_BYTES,
        };
        let t = measure(&mut model, &cfg, crate::precision::Precision::Fp32).unwrap();
        for r in [
            t.forward,
            t.search,
            t.train.expect("a fresh model trains"),
            t.detect.expect("detectors timed"),
        ] {
            assert!(r.is_finite() && r > 0.0, "{t:?}");
        }
        // Frozen now: timing it again has no training to time.
        let again = measure(&mut model, &cfg, crate::precision::Precision::Fp32).unwrap();
        assert!(again.train.is_none());
        // An image too large for the memory a timing may take is refused before anything runs.
        let tight = MeasureConfig {
            max_bytes: 1 << 10,
            ..cfg
        };
        let err = measure(&mut model, &tight, crate::precision::Precision::Fp32).unwrap_err();
        assert!(err.to_string().contains("not timed"), "{err}");
    }
}
