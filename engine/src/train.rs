//! Supervised training of built-in models: SGD with momentum and weight decay, an LR schedule, and
//! optional crop-with-padding and horizontal-flip augmentation.

use crate::adversarial::{pgd, PgdConfig};
use crate::amp::{autocast, LossScaler};
use crate::data::Dataset;
use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::sgd::Sgd;
use crate::train_state::OptimState;
use crate::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Kind, Tensor};

/// How the learning rate moves over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    Constant,
    #[default]
    Cosine,
    /// ×0.1 at 50% and 75% of training.
    Multistep,
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: Schedule,
    pub augment: bool,
    pub seed: u64,
    /// Adversarial training: each batch is replaced by its PGD examples.
    #[serde(default)]
    pub adversarial: Option<PgdConfig>,
    /// Mixed precision: CUDA autocast for the forward pass and dynamic loss scaling (the scaling
    /// also runs on the CPU, where it is exact and changes nothing).
    #[serde(default)]
    pub mixed_precision: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 3,
            batch: 128,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: Schedule::Cosine,
            augment: false,
            seed: 0,
            adversarial: None,
            mixed_precision: false,
        }
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    /// Clean accuracy on the test set given to `train_from`, after the epoch.
    pub test_accuracy: Option<f64>,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    pub seconds: f64,
}

/// Where training starts and what it reports.
pub struct TrainRun<'a> {
    /// Epochs already done (a resumed run starts at the next one).
    pub start_epoch: usize,
    /// The optimiser's state after those epochs (a resumed run; `None` starts it afresh).
    pub resume: Option<OptimState>,
    /// Measured after every epoch when given.
    pub test: Option<&'a Dataset>,
    /// `(step, total_steps, loss)` after every step.
    pub progress: &'a mut dyn FnMut(usize, usize, f64),
    /// After every epoch: checkpoint here (the model and the optimiser's state).
    pub epoch_end: &'a mut dyn FnMut(&Model, &OptimState, &EpochStats) -> Result<()>,
}

fn lr_at(cfg: &TrainConfig, step: usize, total: usize) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    match cfg.schedule {
        Schedule::Constant => cfg.lr,
        Schedule::Cosine => cfg.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
        Schedule::Multistep => {
            cfg.lr
                * if t < 0.5 {
                    1.0
                } else if t < 0.75 {
                    0.1
                } else {
                    0.01
                }
        }
    }
}

/// Random crop after zero-padding by 4, and a horizontal flip with probability ½, per image.
fn augment(x: &Tensor, rng: &mut Rng) -> Tensor {
    let s = x.size();
    let (h, w) = (s[2], s[3]);
    let padded = x.constant_pad_nd([4, 4, 4, 4]);
    let crops: Vec<Tensor> = (0..s[0])
        .map(|i| {
            let (dy, dx) = (rng.below(9) as i64, rng.below(9) as i64);
            let img = padded.get(i).narrow(1, dy, h).narrow(2, dx, w);
            if rng.below(2) == 1 {
                img.flip([2])
            } else {
                img
            }
        })
        .collect();
    Tensor::stack(&crops, 0)
}

/// Trains `model` (a built-in one) on `data`; `progress(step, total_steps, loss)` is called every step.
pub fn train(
    model: &mut Model,
    data: &Dataset,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<Vec<EpochStats>> {
    let run = TrainRun {
        start_epoch: 0,
        resume: None,
        test: None,
        progress,
        epoch_end: &mut |_, _, _| Ok(()),
    };
    train_from(model, data, cfg, run)
}

/// Trains epochs `run.start_epoch..cfg.epochs` with the learning-rate schedule positioned as if the
/// earlier epochs had run. Data order, augmentation and torch's generator are seeded per epoch, and
/// the optimiser continues from `run.resume`: resumed from a checkpoint, training takes the same
/// steps as an uninterrupted run.
pub fn train_from(
    model: &mut Model,
    data: &Dataset,
    cfg: &TrainConfig,
    run: TrainRun,
) -> Result<Vec<EpochStats>> {
    let TrainRun {
        start_epoch,
        resume,
        test,
        progress,
        epoch_end,
    } = run;
    if cfg.epochs == 0 || cfg.batch == 0 || cfg.lr <= 0.0 {
        return Err(EngineError::Invalid(
            "training needs epochs ≥ 1, batch ≥ 1 and lr > 0".into(),
        ));
    }
    let mut trainer = Trainer::new(model, data, cfg, resume, start_epoch)?;
    let n = trainer.n;
    let mut stats = Vec::new();
    for epoch in start_epoch..cfg.epochs {
        let started = Instant::now();
        let (loss_sum, correct) = trainer.epoch(model, epoch, progress)?;
        let test_accuracy = match test {
            Some(t) => Some(model.accuracy(&t.images, &t.labels)?),
            None => None,
        };
        let e = EpochStats {
            epoch,
            loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
            test_accuracy,
            lr: lr_at(cfg, trainer.step.saturating_sub(1), trainer.total),
            seconds: started.elapsed().as_secs_f64(),
        };
        let state = trainer.state();
        epoch_end(model, &state, &e)?;
        stats.push(e);
    }
    model.freeze();
    Ok(stats)
}

/// What training carries from step to step: the optimiser, the loss scaler and the global step.
struct Trainer<'a> {
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    device: tch::Device,
    opt: Sgd,
    scaler: Option<LossScaler>,
    /// Training images.
    n: usize,
    /// Steps taken, counting the epochs before a resumed run.
    step: usize,
    /// Steps of the whole run.
    total: usize,
}

impl<'a> Trainer<'a> {
    /// Unfreezes `model` and sets up its optimiser (continuing `resume`) at epoch `start_epoch`.
    fn new(
        model: &mut Model,
        data: &'a Dataset,
        cfg: &'a TrainConfig,
        resume: Option<OptimState>,
        start_epoch: usize,
    ) -> Result<Trainer<'a>> {
        let device = model.device();
        let vs = model.var_store_mut().ok_or_else(|| {
            EngineError::Invalid("a TorchScript model cannot be trained here".into())
        })?;
        vs.unfreeze();
        let mut opt = Sgd::new(vs, cfg.lr, cfg.momentum, cfg.weight_decay);
        let mut scaler = cfg.mixed_precision.then(|| LossScaler::new(opt.params()));
        if let Some(state) = resume {
            opt.load_state(state.momentum)?;
            if let (Some(sc), Some(saved)) = (scaler.as_mut(), &state.scaler) {
                sc.restore(saved);
            }
        }
        let n = data.len();
        let steps_per_epoch = n.div_ceil(cfg.batch);
        let total = steps_per_epoch * cfg.epochs;
        let step = steps_per_epoch * start_epoch;
        Ok(Trainer {
            cfg,
            data,
            device,
            opt,
            scaler,
            n,
            step,
            total,
        })
    }

    /// One epoch over a seeded shuffle of the data; returns its summed loss and correct count.
    fn epoch(
        &mut self,
        model: &Model,
        epoch: usize,
        progress: &mut dyn FnMut(usize, usize, f64),
    ) -> Result<(f64, i64)> {
        let cfg = self.cfg;
        let mut rng = Rng::new(mix(&[cfg.seed, epoch as u64]));
        // Torch's generator too (PGD's random starts), so an epoch does not depend on the earlier
        // ones having run in this process.
        tch::manual_seed(mix(&[cfg.seed, 0x7EA1, epoch as u64]) as i64);
        let mut order: Vec<i64> = (0..self.n as i64).collect();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut correct) = (0.0, 0i64);
        for chunk in order.chunks(cfg.batch) {
            let (l, hits) = self.batch(model, chunk, &mut rng)?;
            loss_sum += l * chunk.len() as f64;
            correct += hits;
            self.step += 1;
            progress(self.step, self.total, l);
        }
        Ok((loss_sum, correct))
    }

    /// One SGD step on the images `chunk` (augmented, made adversarial); returns its mean loss and
    /// how many of them the model classified right.
    fn batch(&mut self, model: &Model, chunk: &[i64], rng: &mut Rng) -> Result<(f64, i64)> {
        let (cfg, device) = (self.cfg, self.device);
        let idx = Tensor::from_slice(chunk);
        let mut x = self.data.images.index_select(0, &idx);
        if cfg.augment {
            x = augment(&x, rng);
        }
        let x = x.to_device(device);
        let y = self.data.labels.index_select(0, &idx).to_device(device);
        let x = match &cfg.adversarial {
            Some(attack) => pgd(model, &x, &y, attack)?,
            None => x,
        };
        self.opt.lr = lr_at(cfg, self.step, self.total);
        let logits =
            autocast(cfg.mixed_precision, device, || model.logits_train(&x)).to_kind(Kind::Float);
        let loss = logits.cross_entropy_for_logits(&y);
        match self.scaler.as_mut() {
            Some(s) => {
                s.backward_step(&mut self.opt, &loss)?;
            }
            None => self.opt.backward_step(&loss)?,
        }
        let l = loss.double_value(&[]);
        let correct = logits
            .argmax(1, false)
            .eq_tensor(&y)
            .sum(Kind::Int64)
            .int64_value(&[]);
        Ok((l, correct))
    }

    /// The optimiser's state, for a checkpoint.
    fn state(&self) -> OptimState {
        OptimState {
            momentum: self.opt.state(),
            scaler: self.scaler.as_ref().map(LossScaler::state),
        }
    }
}
