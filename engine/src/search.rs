//! The ISCP mask search (Algorithm 1): one mask over a canvas, optimised on shuffled minibatches of
//! non-target images with the `paper` or the `released` objective, clamped to [0,1] after every step.

use crate::amp::{logits_in, Precision};
use crate::finite::check_finite_slice;
use crate::lanes::{lane_count, run_lanes};
use crate::memory;
use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which loss and update rule the search uses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, PartialOrd, Ord,
)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Eq. 2: L = Σ_j [−log f_y(x̃_j) + α‖m‖₁/n], plain gradient step.
    Paper,
    /// The authors' code: L = α·mean_j CE(x̃_j, y) + (1−α)·‖m‖₁/(n/2), signed step.
    #[default]
    Released,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Paper => "paper",
            Objective::Released => "released",
        }
    }
}

/// Search hyper-parameters (defaults: T = 5, B = 4, η = 0.02).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchConfig {
    pub objective: Objective,
    pub alpha: f64,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// Seeds the data order (one shuffle per epoch).
    pub seed: u64,
    /// Weight β of the total-variation term β·‖∇m‖²₂/n (Eq. 3); 0 turns it off.
    pub tv_beta: f64,
    /// Learn the canvas too (Eq. 4): alternately 5 mask steps and 5 canvas steps of 2/255.
    pub learn_canvas: bool,
    /// The model's arithmetic (fp16 autocast on CUDA); a batch runs in fp16 when any of its jobs
    /// asks for it (a spec's searches all share one).
    pub precision: Precision,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            objective: Objective::Released,
            alpha: 0.2,
            epochs: 5,
            batch: 4,
            lr: 0.02,
            seed: 0,
            tv_beta: 0.0,
            learn_canvas: false,
            precision: Precision::Fp32,
        }
    }
}

/// A finished search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// The continuous mask, H·W values in [0,1], row-major.
    pub mask: Vec<f32>,
    /// Mean objective value over the steps of the last epoch.
    pub final_loss: f64,
    pub steps: usize,
    /// The learned canvas (C·H·W values in [0,1]) when the search learned one.
    pub canvas: Option<Vec<f32>>,
    /// How many searches ran together in the optimisation that produced this one (itself
    /// included), after any halving for memory.
    pub ran_with: usize,
    /// How many times its batch was halved after running out of device memory (0: never).
    pub oom_halvings: u32,
}

/// One search of a batch: a target class, a canvas, the dataset rows of its D_n, its parameters.
#[derive(Debug)]
pub struct SearchJob {
    pub target: i64,
    /// C×H×W, pixels in [0,1].
    pub canvas: Tensor,
    /// Rows of the shared image tensor that form D_n.
    pub pool: Vec<i64>,
    pub cfg: SearchConfig,
}

impl SearchJob {
    /// Another handle to the same job (the canvas tensor is shared, not copied).
    pub fn shallow(&self) -> SearchJob {
        SearchJob {
            target: self.target,
            canvas: self.canvas.shallow_clone(),
            pool: self.pool.clone(),
            cfg: self.cfg.clone(),
        }
    }
}

impl crate::lanes::LaneJob for SearchJob {
    /// Its epochs times its minibatches per epoch.
    fn steps(&self) -> usize {
        self.cfg.epochs * self.pool.len().div_ceil(self.cfg.batch.max(1))
    }
    fn batch(&self) -> usize {
        self.cfg.batch
    }
    fn shallow(&self) -> SearchJob {
        SearchJob::shallow(self)
    }
}

/// A job's minibatches over all its epochs, in order.
fn schedule(job: &SearchJob) -> Vec<Vec<i64>> {
    let mut chunks = Vec::new();
    for epoch in 0..job.cfg.epochs {
        let mut order = job.pool.clone();
        Rng::new(mix(&[job.cfg.seed, epoch as u64])).shuffle(&mut order);
        chunks.extend(order.chunks(job.cfg.batch).map(|c| c.to_vec()));
    }
    chunks
}

fn validate(job: &SearchJob, images: &Tensor, classes: usize) -> Result<()> {
    let s = images.size();
    let n = s[0];
    if job.pool.is_empty() {
        return Err(EngineError::Invalid(
            "the non-target subset D_n is empty".into(),
        ));
    }
    if let Some(bad) = job.pool.iter().find(|&&i| i < 0 || i >= n) {
        return Err(EngineError::Invalid(format!(
            "D_n row {bad} is outside the {n} images"
        )));
    }
    if job.cfg.batch == 0 || job.cfg.epochs == 0 {
        return Err(EngineError::Invalid(
            "search needs epochs ≥ 1 and batch ≥ 1".into(),
        ));
    }
    if job.target < 0 || job.target as usize >= classes {
        return Err(EngineError::Invalid(format!(
            "target class {} is not one of the {classes} classes",
            job.target
        )));
    }
    if job.canvas.size() != s[1..] {
        return Err(EngineError::Invalid(format!(
            "canvas of shape {:?} for images of shape {:?}",
            job.canvas.size(),
            &s[1..]
        )));
    }
    Ok(())
}

/// Runs many independent searches against one model as one optimisation: K masks, each seeing its
/// own seeded shuffle of its own D_n in minibatches of its own B, all K·B images in one forward and
/// backward pass. The model is in eval mode and each mask's gradient comes only from its own images
/// and loss, so every mask equals what the search alone would give (up to float rounding). Jobs of
/// different lengths are handled: a finished job simply drops out of later steps. A job whose
/// inputs are invalid fails alone. `images` (N×C×H×W) must be on the model's device;
/// `progress(step, total)` is called after every step.
///
/// K is bounded by the device's free memory (`memory::searches_that_fit`): more jobs than fit run
/// as several batches one after another. On a CPU with several intra-op threads a batch runs in
/// single-threaded lanes (`lanes`), one per thread.
pub fn search_batch(
    model: &Model,
    images: &Tensor,
    jobs: &[SearchJob],
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Result<SearchOutcome>> {
    let mut results: Vec<Option<Result<SearchOutcome>>> = jobs
        .iter()
        .map(|j| validate(j, images, model.num_classes()).err().map(Err))
        .collect();
    let live: Vec<usize> = (0..jobs.len()).filter(|&k| results[k].is_none()).collect();
    // As many searches at once as the device's free memory holds (all of them when it is unknown).
    let batch = live.iter().map(|&k| jobs[k].cfg.batch).max().unwrap_or(1);
    let fit = match memory::free_bytes(model.device()) {
        Some(free) => memory::searches_that_fit(&model.meta, batch, free),
        None => live.len(),
    };
    let chunks: Vec<&[usize]> = live.chunks(fit.max(1)).collect();
    let n = chunks.len();
    for (c, chunk) in chunks.into_iter().enumerate() {
        let refs: Vec<&SearchJob> = chunk.iter().map(|&k| &jobs[k]).collect();
        // One chunk reports its own steps; several report their share of the whole, per mille.
        let mut report = |step: usize, total: usize| match n {
            1 => progress(step, total),
            _ => progress(c * 1000 + step * 1000 / total.max(1), n * 1000),
        };
        for (k, out) in
            chunk
                .iter()
                .zip(run_fitting(run_chunk, model, images, &refs, 0, &mut report))
        {
            results[*k] = Some(out.map_err(|e| e.for_each_job("batched search failed: ")));
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every job has a result"))
        .collect()
}

/// Runs a chunk of valid jobs together (`run_chunk`; a fake in tests).
type ChunkFn =
    fn(&Model, &Tensor, &[&SearchJob], &mut dyn FnMut(usize, usize)) -> Vec<Result<SearchOutcome>>;

/// `runner`, with the jobs that ran out of memory retried in two halves (recursively, down to
/// one job alone), each outcome marked with the batch it finally ran in and how often it was halved.
fn run_fitting(
    runner: ChunkFn,
    model: &Model,
    images: &Tensor,
    refs: &[&SearchJob],
    halvings: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Result<SearchOutcome>> {
    let mut outs = runner(model, images, refs, progress);
    for out in outs.iter_mut().flatten() {
        out.ran_with = refs.len();
        out.oom_halvings = halvings;
    }
    let oom: Vec<usize> = (0..refs.len())
        .filter(|&j| matches!(&outs[j], Err(e) if e.is_out_of_memory()))
        .collect();
    if refs.len() > 1 && !oom.is_empty() {
        let again: Vec<&SearchJob> = oom.iter().map(|&j| refs[j]).collect();
        let mut retried = Vec::with_capacity(again.len());
        for part in again.chunks(again.len().div_ceil(2)) {
            retried.extend(run_fitting(
                runner,
                model,
                images,
                part,
                halvings + 1,
                progress,
            ));
        }
        for (&j, out) in oom.iter().zip(retried) {
            outs[j] = out;
        }
    }
    outs
}

/// Runs valid jobs as one batch: in lanes on a CPU with several threads, else as one optimisation.
fn run_chunk(
    model: &Model,
    images: &Tensor,
    refs: &[&SearchJob],
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Result<SearchOutcome>> {
    match lane_count(model, refs.len()) {
        1 => match run_batch(model, images, refs, progress) {
            Ok(outs) => outs.into_iter().map(Ok).collect(),
            Err(e) => refs.iter().map(|_| Err(e.for_each_job(""))).collect(),
        },
        lanes => run_lanes(model, images, refs, lanes, run_batch, progress),
    }
}

/// Steps of each phase when the canvas is learned (Eq. 4).
pub const CANVAS_PERIOD: usize = 5;
/// The canvas's signed step size.
pub const CANVAS_LR: f64 = 2.0 / 255.0;

/// ‖∇m‖²₂ per mask of a K×1×H×W batch: squared differences of vertical and horizontal neighbours.
pub fn total_variation(masks: &Tensor) -> Tensor {
    let s = masks.size();
    let (h, w) = (s[2], s[3]);
    let dy = masks.narrow(2, 1, h - 1) - masks.narrow(2, 0, h - 1);
    let dx = masks.narrow(3, 1, w - 1) - masks.narrow(3, 0, w - 1);
    let dims = [1i64, 2, 3];
    dy.square()
        .sum_dim_intlist(dims.as_slice(), false, Kind::Float)
        + dx.square()
            .sum_dim_intlist(dims.as_slice(), false, Kind::Float)
}

/// Runs valid jobs as one batched optimisation: set up, `total` steps, then each job's outcome.
fn run_batch(
    model: &Model,
    images: &Tensor,
    jobs: &[&SearchJob],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<SearchOutcome>> {
    let mut batch = Batch::new(images, jobs);
    let total = batch.total;
    for t in 0..total {
        batch.step(model, images, t)?;
        progress(t + 1, total);
    }
    batch.finish()
}

/// The state of one batched optimisation: each job's minibatches and the tensors the steps update.
struct Batch<'a> {
    jobs: &'a [&'a SearchJob],
    device: tch::Device,
    /// Searches in the batch.
    k: usize,
    /// Pixels of one mask (H·W).
    n: f64,
    /// Each job's minibatches over all its epochs (`schedule`).
    plans: Vec<Vec<Vec<i64>>>,
    /// Steps of the longest job.
    total: usize,
    /// Each job's minibatches per epoch.
    per_epoch: Vec<usize>,
    precision: Precision,
    /// K×C×H×W, requiring grad when any job learns its canvas.
    canvases: Tensor,
    /// K×1×1×1 step sizes.
    lr: Tensor,
    /// K×1×1×1: 1 for a signed step (`released`), 0 for a plain one (`paper`).
    signed: Tensor,
    /// K×1×H×W, the masks searched.
    masks: Tensor,
    /// Each job's objective summed over the steps of its last epoch.
    last_epoch_loss: Tensor,
}

/// One step's layout: the images it takes, whose they are, and each job's weights and phase.
struct StepPlan {
    rows: Vec<i64>,
    owner: Vec<i64>,
    targets: Vec<i64>,
    weight: Vec<f32>,
    l1_weight: Vec<f32>,
    tv_weight: Vec<f32>,
    active: Vec<f32>,
    canvas_active: Vec<f32>,
    in_last: Vec<f32>,
}

impl<'a> Batch<'a> {
    /// Schedules every job and stacks their canvases, step sizes and starting masks (all 0.5).
    fn new(images: &Tensor, jobs: &'a [&'a SearchJob]) -> Batch<'a> {
        let device = images.device();
        let s = images.size();
        let (h, w) = (s[2], s[3]);
        let n = (h * w) as f64;
        let k = jobs.len();
        let plans: Vec<Vec<Vec<i64>>> = jobs.iter().map(|j| schedule(j)).collect();
        let total = plans.iter().map(|p| p.len()).max().unwrap_or(0);
        let per_epoch: Vec<usize> = plans
            .iter()
            .zip(jobs)
            .map(|(p, j)| p.len() / j.cfg.epochs)
            .collect();
        let learning = jobs.iter().any(|j| j.cfg.learn_canvas);
        let precision = match jobs.iter().any(|j| j.cfg.precision == Precision::Fp16) {
            true => Precision::Fp16,
            false => Precision::Fp32,
        };
        let canvases = Tensor::stack(
            &jobs
                .iter()
                .map(|j| j.canvas.to_device(device))
                .collect::<Vec<_>>(),
            0,
        )
        .set_requires_grad(learning);
        let floats = |f: &dyn Fn(&SearchJob) -> f64| {
            Tensor::from_slice(&jobs.iter().map(|j| f(j) as f32).collect::<Vec<_>>())
                .to_device(device)
        };
        let lr = floats(&|j| j.cfg.lr).view([k as i64, 1, 1, 1]);
        let signed = floats(&|j| (j.cfg.objective == Objective::Released) as u8 as f64)
            .view([k as i64, 1, 1, 1]);
        let masks =
            Tensor::full([k as i64, 1, h, w], 0.5, (Kind::Float, device)).set_requires_grad(true);
        let last_epoch_loss = Tensor::zeros([k as i64], (Kind::Float, device));
        Batch {
            jobs,
            device,
            k,
            n,
            plans,
            total,
            per_epoch,
            precision,
            canvases,
            lr,
            signed,
            masks,
            last_epoch_loss,
        }
    }

    /// Step `t`'s layout: the jobs still running add their minibatch and their loss weights.
    fn plan(&self, t: usize) -> StepPlan {
        let (n, k) = (self.n, self.k);
        let (mut rows, mut owner, mut targets, mut weight) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut l1_weight = vec![0f32; k];
        let mut tv_weight = vec![0f32; k];
        let mut active = vec![0f32; k];
        let mut canvas_active = vec![0f32; k];
        // Learned canvases alternate: steps 0–4 move the mask, 5–9 the canvas, and so on.
        let canvas_phase = (t / CANVAS_PERIOD) % 2 == 1;
        let mut in_last = vec![0f32; k];
        for (j, job) in self.jobs.iter().enumerate() {
            let Some(chunk) = self.plans[j].get(t) else {
                continue;
            };
            let b = chunk.len() as f64;
            let (ce_w, l1_w) = match job.cfg.objective {
                // Σ_j [CE_j + α‖m‖₁/n]
                Objective::Paper => (1.0, job.cfg.alpha * b / n),
                // α·mean_j CE_j + (1−α)‖m‖₁/(n/2)
                Objective::Released => (job.cfg.alpha / b, (1.0 - job.cfg.alpha) / (n / 2.0)),
            };
            rows.extend_from_slice(chunk);
            owner.extend(std::iter::repeat_n(j as i64, chunk.len()));
            targets.extend(std::iter::repeat_n(job.target, chunk.len()));
            weight.extend(std::iter::repeat_n(ce_w as f32, chunk.len()));
            l1_weight[j] = l1_w as f32;
            tv_weight[j] = (job.cfg.tv_beta / n) as f32;
            if job.cfg.learn_canvas && canvas_phase {
                canvas_active[j] = 1.0;
            } else {
                active[j] = 1.0;
            }
            in_last[j] = (t >= self.plans[j].len() - self.per_epoch[j]) as u8 as f32;
        }
        StepPlan {
            rows,
            owner,
            targets,
            weight,
            l1_weight,
            tv_weight,
            active,
            canvas_active,
            in_last,
        }
    }

    /// Optimisation step `t`: the batch's forward pass and per-job objective, then `update`.
    fn step(&mut self, model: &Model, images: &Tensor, t: usize) -> Result<()> {
        let plan = self.plan(t);
        let (k, device) = (self.k, self.device);
        let to = |v: &[f32]| Tensor::from_slice(v).to_device(device);
        let owner = Tensor::from_slice(&plan.owner).to_device(device);
        let x = images.index_select(0, &Tensor::from_slice(&plan.rows).to_device(device));
        let m = self.masks.index_select(0, &owner);
        let mixed: Tensor = &m * self.canvases.index_select(0, &owner) + (1.0 - &m) * x;
        // On the CPU the small CNN's first layer is differentiated by hand (`Stem`): the network
        // sees a detached copy of the mixed images and hands back their gradient.
        let stem = model.stem_pass(&mixed.detach());
        let logits = match &stem {
            Some(pass) => pass.logits.shallow_clone(),
            None => logits_in(model, &mixed, self.precision)?,
        };
        let ce = logits.cross_entropy_loss::<Tensor>(
            &Tensor::from_slice(&plan.targets).to_device(device),
            None,
            tch::Reduction::None,
            -100,
            0.0,
        );
        let per_image = ce * to(&plan.weight);
        let l1 = self
            .masks
            .abs()
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
            * to(&plan.l1_weight);
        // Most searches have no TV term: skip its dozen small operations (and their backward).
        let penalty = match plan.tv_weight.iter().any(|&w| w != 0.0) {
            true => l1 + total_variation(&self.masks) * to(&plan.tv_weight),
            false => l1,
        };
        let fit = Tensor::zeros([k as i64], (Kind::Float, device)).index_add(0, &owner, &per_image);
        let per_job = &fit + &penalty;
        let loss = match &stem {
            // Σ ∂L/∂x̃ · x̃ has the gradient of the fit term with respect to masks and canvases.
            Some(pass) => {
                let grad_mixed = pass.input_grad(&fit.sum(Kind::Float))?;
                (&mixed * grad_mixed).sum(Kind::Float) + penalty.sum(Kind::Float)
            }
            None => per_job.sum(Kind::Float),
        };
        self.update(&loss, &per_job, &plan)
    }

    /// Backpropagates `loss`, steps the active masks (and canvases) and clamps them to [0,1], and
    /// adds `per_job` to the losses of jobs in their last epoch.
    fn update(&mut self, loss: &Tensor, per_job: &Tensor, plan: &StepPlan) -> Result<()> {
        let (k, device) = (self.k, self.device);
        let to = |v: &[f32]| Tensor::from_slice(v).to_device(device);
        let canvas_step = plan.canvas_active.iter().any(|&a| a > 0.0);
        let mut grads = if canvas_step {
            crate::grad::grads_or_zero(loss, &[&self.masks, &self.canvases])?
        } else {
            crate::grad::grads_or_zero(loss, &[&self.masks])?
        };
        let grad = grads.remove(0);
        tch::no_grad(|| -> Result<()> {
            let step = (&self.signed * grad.sign() + (1.0 - &self.signed) * &grad)
                * &self.lr
                * to(&plan.active).view([k as i64, 1, 1, 1]);
            let _ = self.masks.f_sub_(&step)?.f_clamp_(0.0, 1.0)?;
            if canvas_step {
                let g = grads.remove(0);
                let step = g.sign() * CANVAS_LR * to(&plan.canvas_active).view([k as i64, 1, 1, 1]);
                let _ = self.canvases.f_sub_(&step)?.f_clamp_(0.0, 1.0)?;
            }
            self.last_epoch_loss += per_job.detach() * to(&plan.in_last);
            Ok(())
        })
    }

    /// Each job's outcome: its mask (checked finite), its canvas when learned, its last-epoch loss.
    fn finish(&self) -> Result<Vec<SearchOutcome>> {
        let (k, jobs) = (self.k, self.jobs);
        let masks = self.masks.detach().to_device(tch::Device::Cpu);
        let canvases = self.canvases.detach().to_device(tch::Device::Cpu);
        let losses: Vec<f32> = Vec::try_from(self.last_epoch_loss.to_device(tch::Device::Cpu))?;
        (0..k)
            .map(|j| {
                let canvas = match jobs[j].cfg.learn_canvas {
                    true => Some(Vec::try_from(canvases.get(j as i64).flatten(0, -1))?),
                    false => None,
                };
                let mask: Vec<f32> = Vec::try_from(masks.get(j as i64).flatten(0, -1))?;
                check_finite_slice(&mask, || {
                    format!(
                        "the mask searched for class {} (the model's loss or gradients were NaN or infinite)",
                        jobs[j].target
                    )
                })?;
                Ok(SearchOutcome {
                    mask,
                    final_loss: losses[j] as f64 / self.per_epoch[j] as f64,
                    steps: self.plans[j].len(),
                    canvas,
                    ran_with: k,
                    oom_halvings: 0,
                })
            })
            .collect()
    }
}

/// Runs one search for `target` on `canvas` (C×H×W) over `pool` (D_n, N×C×H×W, on the model's
/// device): `search_batch` with a single job.
pub fn search(
    model: &Model,
    canvas: &Tensor,
    pool: &Tensor,
    target: i64,
    cfg: &SearchConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SearchOutcome> {
    let s = pool.size();
    if s.len() != 4 {
        return Err(EngineError::Invalid(format!(
            "the non-target subset is not N×C×H×W: {s:?}"
        )));
    }
    let job = SearchJob {
        target,
        canvas: canvas.shallow_clone(),
        pool: (0..s[0]).collect(),
        cfg: cfg.clone(),
    };
    search_batch(model, pool, &[job], progress).remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, ModelMeta};

    /// Runs out of memory whenever more than two searches run together.
    fn two_fit(
        _: &Model,
        _: &Tensor,
        refs: &[&SearchJob],
        _: &mut dyn FnMut(usize, usize),
    ) -> Vec<Result<SearchOutcome>> {
        refs.iter()
            .map(|j| match refs.len() > 2 {
                true => Err(EngineError::Torch(tch::TchError::Torch(
                    "CUDA out of memory. Tried to allocate 2.00 GiB".into(),
                ))),
                false => Ok(SearchOutcome {
                    mask: vec![j.target as f32],
                    final_loss: 0.0,
                    steps: 1,
                    canvas: None,
                    ran_with: 0,
                    oom_halvings: 0,
                }),
            })
            .collect()
    }

    fn setup(n: usize) -> (Model, Tensor, Vec<SearchJob>) {
        let meta = ModelMeta {
            arch: Arch::SmallCnn,
            class_names: (0..n).map(|c| c.to_string()).collect(),
            input_shape: [1, 8, 8],
            normalize: None,
            test_accuracy: None,
        };
        let model = Model::new_builtin(meta, tch::Device::Cpu).unwrap();
        let images = Tensor::zeros([4, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
        let jobs = (0..n as i64)
            .map(|target| SearchJob {
                target,
                canvas: Tensor::zeros([1, 8, 8], (Kind::Float, tch::Device::Cpu)),
                pool: vec![0, 1],
                cfg: SearchConfig::default(),
            })
            .collect();
        (model, images, jobs)
    }

    #[test]
    fn a_batch_out_of_memory_is_retried_in_halves_and_says_so() {
        let (model, images, jobs) = setup(7);
        let refs: Vec<&SearchJob> = jobs.iter().collect();
        let outs = run_fitting(two_fit, &model, &images, &refs, 0, &mut |_, _| {});
        // 7 → 4 + 3 → 2 + 2 and 2 + 1: every search done, in its own order, twice halved.
        for (j, out) in outs.iter().enumerate() {
            let out = out.as_ref().expect("retried until it fit");
            assert_eq!(out.mask, vec![j as f32], "results stay with their jobs");
            assert!(out.ran_with <= 2 && out.ran_with >= 1, "{}", out.ran_with);
            assert_eq!(out.oom_halvings, 2);
        }
        let sizes: Vec<usize> = outs.iter().map(|o| o.as_ref().unwrap().ran_with).collect();
        assert_eq!(sizes, vec![2, 2, 2, 2, 2, 2, 1]);
        // Two fit at once: nothing to halve.
        let outs = run_fitting(two_fit, &model, &images, &refs[..2], 0, &mut |_, _| {});
        assert!(outs.iter().all(|o| o.as_ref().unwrap().oom_halvings == 0));
    }
}
