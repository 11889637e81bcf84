//! Neural Cleanse (Wang et al., S&P 2019) as a second backdoor detector: per label, the smallest
//! mask (with a pattern) that flips clean images to that label, and a MAD anomaly index over the
//! labels' mask norms (lower tail: a backdoor's target needs a far smaller mask than the others).

use crate::adam::Adam;
use crate::anomaly::MAD_CONSISTENCY;
use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::{EngineError, Result};
use tch::{Device, Kind, Reduction, Tensor};

/// The optimisation of one label's mask and pattern, with the original's L1 cost schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanseConfig {
    /// Passes over the clean images.
    pub epochs: usize,
    /// Clean images per step (every label of a chunk sees the same ones).
    pub batch: usize,
    /// Adam's step size (the original: 0.1, betas 0.5 and 0.9).
    pub lr: f64,
    /// The L1 weight the schedule switches to once masks first succeed (the original: 1e-3; like
    /// the original, the cost starts at 0 and is set to this after `patience` successful rounds).
    pub init_cost: f64,
    /// The attack success a mask must reach to count (the original: 0.99).
    pub threshold: f64,
    /// Rounds above (below) the threshold before the cost goes up (down) (the original: 5).
    pub patience: usize,
    /// Steps per round: the schedule looks at the mean attack success of a round. The original's
    /// round is an epoch of its data (0 here); a short budget needs shorter rounds to move the cost
    /// at all.
    pub round: usize,
    /// Cost × this after `patience` rounds above the threshold; ÷ this^1.5 after as many below.
    pub multiplier: f64,
    /// Labels optimised together in one batch (K labels × `batch` images per forward pass).
    pub labels_at_once: usize,
    /// The original's early stop: a label stops once its cost has gone both up and down and its
    /// best norm has not shrunk by 1% for this many rounds; a chunk stops when all its labels
    /// have (None: every epoch runs).
    pub early_stop: Option<usize>,
    pub seed: u64,
}

impl CleanseConfig {
    /// The original's published procedure (Wang et al. 2019, its GTSRB example): a round is one
    /// pass over the clean images, the cost doubles after 5 rounds at the threshold and shrinks by
    /// 2^1.5 after 5 below, and a label stops after 25 rounds without a 1% smaller best mask, at
    /// most `epochs` passes (the original: 1,000).
    pub fn original(epochs: usize, batch: usize, seed: u64) -> Self {
        CleanseConfig {
            epochs,
            batch,
            round: 0,
            multiplier: 2.0,
            early_stop: Some(25),
            seed,
            ..CleanseConfig::default()
        }
    }
}

impl Default for CleanseConfig {
    fn default() -> Self {
        CleanseConfig {
            epochs: 10,
            batch: 32,
            lr: 0.1,
            init_cost: 1e-3,
            threshold: 0.99,
            patience: 5,
            round: 10,
            multiplier: 1.5,
            labels_at_once: 10,
            early_stop: None,
            seed: 0,
        }
    }
}

/// The reversed trigger of one label.
#[derive(Debug, Clone, PartialEq)]
pub struct Reversed {
    pub label: i64,
    /// L1 norm of the best mask that reached the threshold; H·W (the whole image) when none did,
    /// so a label without a working trigger never looks anomalously small.
    pub norm: f64,
    /// Whether any round reached the threshold.
    pub reached: bool,
    /// Attack success of the round the kept mask comes from.
    pub attack_success: f64,
    /// The kept mask, H×W values in [0, 1].
    pub mask: Vec<f32>,
}

/// The original's Adam betas.
const BETAS: (f64, f64) = (0.5, 0.9);

/// Per label: the cost schedule's state.
struct Schedule {
    cost: f64,
    /// Rounds at the threshold while the cost is still 0.
    set: usize,
    up: usize,
    down: usize,
    /// Whether the cost has gone up, and down, at least once (the original's early-stop gate).
    went_up: bool,
    went_down: bool,
    /// The best norm the early stop compares with, and rounds since it shrank by 1%.
    stop_best: f64,
    stale: usize,
}

impl Schedule {
    fn new() -> Schedule {
        Schedule {
            cost: 0.0,
            set: 0,
            up: 0,
            down: 0,
            went_up: false,
            went_down: false,
            stop_best: f64::INFINITY,
            stale: 0,
        }
    }

    /// The original's rule after one round with mean attack success `acc`: while the cost is 0,
    /// `patience` rounds at the threshold set it to `init_cost`; after that it goes up after
    /// `patience` rounds at the threshold and down after as many below.
    fn after_round(&mut self, acc: f64, cfg: &CleanseConfig) {
        if self.cost == 0.0 {
            if acc >= cfg.threshold {
                self.set += 1;
                if self.set >= cfg.patience {
                    self.cost = cfg.init_cost;
                    self.set = 0;
                }
            } else {
                self.set = 0;
            }
            return;
        }
        if acc >= cfg.threshold {
            self.up += 1;
            self.down = 0;
        } else {
            self.up = 0;
            self.down += 1;
        }
        if self.up >= cfg.patience {
            self.up = 0;
            self.cost *= cfg.multiplier;
            self.went_up = true;
        } else if self.down >= cfg.patience {
            self.down = 0;
            self.cost /= cfg.multiplier.powf(1.5);
            self.went_down = true;
        }
    }

    /// The original's early stop after a round whose best norm so far is `best`: whether the
    /// label is done (its cost has moved both ways and `best` has not shrunk by 1% for `patience`
    /// rounds).
    fn stopped(&mut self, best: f64, patience: usize) -> bool {
        if best.is_finite() {
            if best >= 0.99 * self.stop_best {
                self.stale += 1;
            } else {
                self.stale = 0;
            }
            self.stop_best = self.stop_best.min(best);
        }
        self.went_up && self.went_down && self.stale >= patience
    }
}

fn seeded(shape: &[i64], seed: u64, device: Device) -> Tensor {
    let n: i64 = shape.iter().product();
    let mut rng = Rng::new(seed);
    // atanh of a uniform value in (-0.9, 0.9): the original's random start, squashed by tanh.
    let v: Vec<f32> = (0..n)
        .map(|_| ((rng.unit_f64() * 1.8 - 0.9).atanh()) as f32)
        .collect();
    Tensor::from_slice(&v).view(shape).to_device(device)
}

/// What every chunk of labels shares: the model, the clean images on its device, the step layout.
struct Setup<'a> {
    model: &'a Model,
    cfg: &'a CleanseConfig,
    /// N×C×H×W on the model's device.
    clean: Tensor,
    device: Device,
    /// N, C, H, W.
    dims: [i64; 4],
    /// Clean images per step.
    batch: i64,
    steps_per_epoch: usize,
    total_steps: usize,
}

/// Reverses a trigger for every label of `model` on `clean` (N×C×H×W, the clean-data budget),
/// `progress(step, total)` after each step.
pub fn reverse_all(
    model: &Model,
    clean: &Tensor,
    cfg: &CleanseConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Reversed>> {
    let s = clean.size();
    if s.len() != 4 || s[0] == 0 {
        return Err(EngineError::Invalid(format!(
            "Neural Cleanse needs N×C×H×W clean images, got {s:?}"
        )));
    }
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let classes = model.num_classes() as i64;
    let device = model.device();
    let clean = clean.to_device(device);
    let batch = (cfg.batch.max(1) as i64).min(n);
    let steps_per_epoch = (n / batch).max(1) as usize;
    let total_steps = cfg.epochs.max(1) * steps_per_epoch;
    let setup = Setup {
        model,
        cfg,
        clean,
        device,
        dims: [n, c, h, w],
        batch,
        steps_per_epoch,
        total_steps,
    };
    let at_once = cfg.labels_at_once.max(1) as i64;
    let chunks: Vec<(i64, i64)> = (0..classes)
        .step_by(at_once as usize)
        .map(|first| (first, at_once.min(classes - first)))
        .collect();
    let mut out = Vec::new();
    let mut done = 0;
    let all = total_steps * chunks.len();
    for (first, k) in chunks {
        let mut labels = LabelChunk::new(&setup, first, k);
        for step in 0..total_steps {
            labels.step(&setup, step)?;
            done += 1;
            progress(done, all);
            if labels.stopped() {
                done += total_steps - step - 1;
                progress(done, all);
                break;
            }
        }
        out.extend(labels.results(h * w)?);
    }
    Ok(out)
}

/// The labels `first..first + k` optimised together: their masks and patterns (before tanh), Adam
/// and cost schedules, best masks so far, and the round's tallies.
struct LabelChunk {
    first: i64,
    k: i64,
    raw_m: Tensor,
    raw_p: Tensor,
    adam_m: Adam,
    adam_p: Adam,
    sched: Vec<Schedule>,
    /// Per label: the norm, attack success and mask of its smallest mask at the threshold.
    best: Vec<Option<(f64, f64, Vec<f32>)>>,
    /// Each label repeated `batch` times.
    targets: Tensor,
    round_hits: Vec<f64>,
    round_steps: usize,
    /// Shuffles the clean images each epoch.
    order: Rng,
    perm: Vec<i64>,
    /// The latest step's mask norms and masks.
    last: (Vec<f64>, Tensor),
    /// Per label: whether the early stop ended it.
    done: Vec<bool>,
}

impl LabelChunk {
    /// Seeded random starts for labels `first..first + k`, with fresh optimisers and schedules.
    fn new(setup: &Setup<'_>, first: i64, k: i64) -> LabelChunk {
        let [n, c, h, w] = setup.dims;
        let device = setup.device;
        let seed = mix(&[setup.cfg.seed, first as u64]);
        let raw_m = seeded(&[k, 1, h, w], mix(&[seed, 1]), device).set_requires_grad(true);
        let raw_p = seeded(&[k, c, h, w], mix(&[seed, 2]), device).set_requires_grad(true);
        let (adam_m, adam_p) = (Adam::new(&raw_m, BETAS), Adam::new(&raw_p, BETAS));
        let sched: Vec<Schedule> = (0..k).map(|_| Schedule::new()).collect();
        let best: Vec<Option<(f64, f64, Vec<f32>)>> = vec![None; k as usize];
        let targets = Tensor::arange_start(first, first + k, (Kind::Int64, device))
            .repeat_interleave_self_int(setup.batch, 0, None::<i64>);
        let round_hits = vec![0.0f64; k as usize];
        let round_steps = 0;
        let order = Rng::new(mix(&[seed, 3]));
        let perm: Vec<i64> = (0..n).collect();
        let last = (Vec::<f64>::new(), Tensor::new());
        let done = vec![false; k as usize];
        LabelChunk {
            first,
            k,
            raw_m,
            raw_p,
            adam_m,
            adam_p,
            sched,
            best,
            targets,
            round_hits,
            round_steps,
            order,
            perm,
            last,
            done,
        }
    }

    /// Whether the early stop has ended every label of the chunk.
    fn stopped(&self) -> bool {
        self.done.iter().all(|d| *d)
    }

    /// Step `step` of `total_steps`: one Adam step of every mask and pattern on the next batch,
    /// ending a round after `cfg.round` steps or at the last step.
    fn step(&mut self, setup: &Setup<'_>, step: usize) -> Result<()> {
        let (k, batch, device, cfg) = (self.k, setup.batch, setup.device, setup.cfg);
        let [_, c, h, w] = setup.dims;
        // A seeded shuffle each epoch, then consecutive batches of it.
        let at = (step % setup.steps_per_epoch) as i64 * batch;
        if at == 0 {
            self.order.shuffle(&mut self.perm);
        }
        let idx =
            Tensor::from_slice(&self.perm[at as usize..(at + batch) as usize]).to_device(device);
        let x = setup.clean.index_select(0, &idx);
        let mask = self.raw_m.tanh() / 2.0 + 0.5;
        let pattern = self.raw_p.tanh() / 2.0 + 0.5;
        let keep: Tensor = mask.neg() + 1.0;
        let mixed = keep.unsqueeze(1) * x.unsqueeze(0) + (&mask * &pattern).unsqueeze(1);
        let logits = setup.model.logits(&mixed.view([k * batch, c, h, w]))?;
        let ce = logits
            .cross_entropy_loss::<Tensor>(&self.targets, None, Reduction::None, -100, 0.0)
            .view([k, batch])
            .mean_dim(1, false, Kind::Float);
        let l1 = mask.sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
        let costs: Vec<f32> = self.sched.iter().map(|s| s.cost as f32).collect();
        let cost = Tensor::from_slice(&costs).to_device(device);
        let loss = (&ce + &cost * &l1).sum(Kind::Float);
        // A model whose logits ignore its input (a constant one) leaves the pattern's gradient
        // undefined: it is zero, not an error.
        let (gm, gp) = {
            let mut g = crate::grad::grads_or_zero(&loss, &[&self.raw_m, &self.raw_p])?;
            let gp = g.remove(1);
            (g.remove(0), gp)
        };
        let hits: Vec<f64> = Vec::<f64>::try_from(
            logits
                .detach()
                .argmax(1, false)
                .eq_tensor(&self.targets)
                .view([k, batch])
                .to_kind(Kind::Double)
                .mean_dim(1, false, Kind::Double),
        )?;
        for (r, hv) in self.round_hits.iter_mut().zip(&hits) {
            *r += hv;
        }
        self.round_steps += 1;
        self.last = (
            Vec::<f64>::try_from(l1.detach().to_kind(Kind::Double))?,
            mask.detach(),
        );
        tch::no_grad(|| {
            self.adam_m.step(&mut self.raw_m, &gm, cfg.lr);
            self.adam_p.step(&mut self.raw_p, &gp, cfg.lr);
        });
        let round = match cfg.round {
            0 => setup.steps_per_epoch,
            r => r,
        };
        if self.round_steps == round || step + 1 == setup.total_steps {
            self.end_round(cfg)?;
        }
        Ok(())
    }

    /// A round's end: keeps each label's mask if it reached the threshold with a smaller norm than
    /// its best, moves its cost schedule, and clears the tallies.
    fn end_round(&mut self, cfg: &CleanseConfig) -> Result<()> {
        let (norms, masks) = &self.last;
        for (j, &norm) in norms.iter().enumerate().take(self.k as usize) {
            let acc = self.round_hits[j] / self.round_steps as f64;
            let better = self.best[j].as_ref().is_none_or(|(b, _, _)| norm < *b);
            if acc >= cfg.threshold && better {
                let m = Vec::<f32>::try_from(masks.get(j as i64).flatten(0, -1))?;
                self.best[j] = Some((norm, acc, m));
            }
            self.sched[j].after_round(acc, cfg);
            if let Some(patience) = cfg.early_stop {
                let best = self.best[j].as_ref().map_or(f64::INFINITY, |b| b.0);
                self.done[j] |= self.sched[j].stopped(best, patience);
            }
        }
        self.round_hits.iter_mut().for_each(|r| *r = 0.0);
        self.round_steps = 0;
        Ok(())
    }

    /// Each label's result: its best mask at the threshold, else its last mask with norm `hw`.
    fn results(&mut self, hw: i64) -> Result<Vec<Reversed>> {
        let mut out = Vec::new();
        let (_, masks) = &self.last;
        for (j, kept) in self.best.iter_mut().enumerate() {
            out.push(match kept.take() {
                Some((norm, acc, mask)) => Reversed {
                    label: self.first + j as i64,
                    norm,
                    reached: true,
                    attack_success: acc,
                    mask,
                },
                None => Reversed {
                    label: self.first + j as i64,
                    norm: hw as f64,
                    reached: false,
                    attack_success: 0.0,
                    mask: Vec::<f32>::try_from(masks.get(j as i64).flatten(0, -1))?,
                },
            });
        }
        Ok(out)
    }
}

/// Neural Cleanse's anomaly index: (median − norm) / (1.4826 · MAD) per label; labels above
/// `FLAG_THRESHOLD` (2) are flagged. Only the lower tail counts: values below 0 mean a larger
/// mask than the typical label. A MAD of 0 (all norms equal) gives 0 everywhere.
pub fn anomaly_indices(norms: &[f64]) -> Vec<f64> {
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let med = median(norms);
    let mad = median(&norms.iter().map(|v| (v - med).abs()).collect::<Vec<_>>()) * MAD_CONSISTENCY;
    norms
        .iter()
        .map(|v| if mad > 0.0 { (med - v) / mad } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_tail_is_anomalous() {
        // median 10, deviations 0,0,1,1,8 → MAD 1 → scale 1.4826
        let a = anomaly_indices(&[10.0, 11.0, 9.0, 10.0, 2.0]);
        assert!((a[4] - 8.0 / 1.4826).abs() < 1e-9);
        assert!(a[4] > crate::anomaly::FLAG_THRESHOLD);
        assert!(a[1] < 0.0, "a larger mask is not anomalous");
        assert!(anomaly_indices(&[3.0; 4]).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_cost_goes_up_above_the_threshold_and_down_below() {
        let cfg = CleanseConfig {
            patience: 2,
            ..Default::default()
        };
        let mut s = Schedule::new();
        s.after_round(1.0, &cfg);
        s.after_round(0.5, &cfg);
        s.after_round(1.0, &cfg);
        assert_eq!(s.cost, 0.0, "two successful rounds in a row set the cost");
        s.after_round(1.0, &cfg);
        assert_eq!(s.cost, 1e-3);
        s.after_round(1.0, &cfg);
        assert_eq!(s.cost, 1e-3);
        s.after_round(1.0, &cfg);
        assert!((s.cost - 1.5e-3).abs() < 1e-15);
        s.after_round(0.5, &cfg);
        s.after_round(0.5, &cfg);
        assert!((s.cost - 1.5e-3 / 1.5f64.powf(1.5)).abs() < 1e-15);
    }
}
