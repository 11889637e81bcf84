//! Cost estimates for `iscp plan`: how many images each unit kind pushes through its model and the
//! multiply-adds that makes, from the spec alone (no data is read for the known datasets).

use crate::spec::{DataKind, LoadedSpec, SettingKind};
use crate::units::{SettingPlan, Unit, UnitKind, UnitParams};
use iscp_engine::model::Arch;
use iscp_engine::throughput::Throughput;

/// Sizes of the data a spec names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataShape {
    pub train: usize,
    pub test: usize,
    pub classes: usize,
    /// (C, H, W)
    pub image: [i64; 3],
}

/// The shape of a dataset that is known without reading it (None: read the files).
pub fn known_shape(spec: &LoadedSpec) -> Option<DataShape> {
    let d = &spec.spec.data;
    match d.kind {
        DataKind::FashionMnist => Some(DataShape {
            train: 60_000,
            test: 10_000,
            classes: 10,
            image: [1, 28, 28],
        }),
        DataKind::Cifar10 => Some(DataShape {
            train: 50_000,
            test: 10_000,
            classes: 10,
            image: [3, 32, 32],
        }),
        DataKind::Synthetic => {
            let def = iscp_engine::data::SyntheticConfig::default();
            let size = d.size.unwrap_or(def.size) as i64;
            Some(DataShape {
                train: d.train.unwrap_or(def.train),
                test: d.test.unwrap_or(def.test),
                classes: d.classes.unwrap_or(def.classes),
                image: [d.channels.unwrap_or(def.channels) as i64, size, size],
            })
        }
        DataKind::ImageFolder => {
            let (classes, per_class) = (d.classes?, d.per_class?);
            let crop = d.crop.unwrap_or(224) as i64;
            Some(DataShape {
                // Unknown without reading the training folder; it only matters for training.
                train: classes * per_class,
                test: classes * per_class,
                classes,
                image: [3, crop, crop],
            })
        }
        DataKind::Idx => None,
    }
}

/// The class names a spec's data has without reading it: the spec's `data.class_names`, else
/// Fashion-MNIST's and CIFAR-10's own; empty when only the files know (progress then says
/// "class 3").
pub fn known_class_names(spec: &LoadedSpec) -> Vec<String> {
    let d = &spec.spec.data;
    if let Some(n) = &d.class_names {
        return n.clone();
    }
    let names: &[&str] = match d.kind {
        DataKind::FashionMnist => &iscp_engine::data::FASHION_MNIST_CLASSES,
        DataKind::Cifar10 => &iscp_engine::data::CIFAR10_CLASSES,
        _ => &[],
    };
    names.iter().map(|s| s.to_string()).collect()
}

/// The shape of the spec's data: known from the spec where it can be, else read from the files
/// (always read for an image folder whose training count a derived setting needs exactly).
pub fn data_shape(spec: &LoadedSpec) -> crate::Result<DataShape> {
    let derived = spec
        .spec
        .settings
        .get_ref()
        .iter()
        .any(|s| s.derive.is_some());
    match known_shape(spec) {
        Some(s) if !(derived && spec.spec.data.kind == DataKind::ImageFolder) => Ok(s),
        _ => {
            let data = crate::work::load_data(&spec.spec.data, spec.spec.seed)?;
            Ok(DataShape {
                train: data.train.len(),
                test: data.test.len(),
                classes: data.test.num_classes(),
                image: data.test.image_shape(),
            })
        }
    }
}

/// Multiply-adds of one forward pass (TorchScript models are counted as a ResNet-50).
pub fn macs_per_image(arch: Arch, [c, h, w]: [i64; 3], classes: usize) -> f64 {
    let (c, h, w) = (c as f64, h as f64, w as f64);
    let area = h * w / 1024.0;
    match arch {
        Arch::SmallCnn => {
            h * w * 16.0 * c * 9.0
                + (h / 2.0) * (w / 2.0) * 32.0 * 16.0 * 9.0
                + 32.0 * (h / 4.0).floor() * (w / 4.0).floor() * 128.0
                + 128.0 * classes as f64
        }
        Arch::GapCnn => {
            h * w * 16.0 * c * 9.0
                + (h / 2.0) * (w / 2.0) * 32.0 * 16.0 * 9.0
                + (h / 4.0) * (w / 4.0) * 64.0 * 32.0 * 9.0
                + 64.0 * classes as f64
        }
        // Stem and stage 1 at full size (16 wide), stages 2–4 halving the side and doubling width.
        Arch::ResnetSmall => {
            let full = h * w * 16.0 * 9.0 * (c + 2.0 * 16.0);
            full * (1.0 + 0.75 + 0.75 + 0.75) + 128.0 * classes as f64
        }
        Arch::Resnet18 => 0.56e9 * area,
        Arch::Resnet50 | Arch::Torchscript => 1.30e9 * area,
    }
}

/// Images through the model in one unit, by the kind of pass they make.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Passes {
    /// No-grad forward passes (evaluations, clean predictions, measuring).
    pub forward: f64,
    /// Forward and backward to the input (search steps, derive-data inversions, PGD steps).
    pub search: f64,
    /// Training images (forward in training mode, backward to the parameters, a step).
    pub train: f64,
    /// Forward and backward to the input in the detectors' one optimisation batched over every
    /// class (Neural Cleanse, MM-BD, the UAP scan).
    pub detect: f64,
}

impl Passes {
    /// Forward-pass equivalents: a search or training image counts 3 (forward and backward).
    pub fn image_passes(&self) -> f64 {
        self.forward + 3.0 * (self.search + self.train + self.detect)
    }

    /// Seconds at the measured `rate` (training and detectors at the search rate where they were
    /// not measured).
    pub fn seconds(&self, rate: &Throughput) -> f64 {
        let per = |n: f64, r: f64| if n > 0.0 { n / r.max(1e-9) } else { 0.0 };
        per(self.forward, rate.forward)
            + per(self.search, rate.search)
            + per(self.train, rate.train.unwrap_or(rate.search))
            + per(self.detect, rate.detect.unwrap_or(rate.search))
    }

    fn add(&mut self, o: &Passes) {
        self.forward += o.forward;
        self.search += o.search;
        self.train += o.train;
        self.detect += o.detect;
    }
}

/// Images through the model (a training or search image counts 3: forward and backward),
/// multiply-adds at the architecture's assumed size, and seconds at measured rates (where known),
/// for one unit kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindCost {
    pub units: usize,
    pub image_passes: f64,
    pub macs: f64,
    /// Seconds at the measured rates of the models its units run on (None where a model was not
    /// measured).
    pub seconds: Option<f64>,
    /// Its passes, summed.
    pub passes: Passes,
}

/// The architecture a setting's model is counted as (a TorchScript model as a ResNet-50).
fn arch_of(p: &SettingPlan) -> Arch {
    if p.setting.model.is_some() {
        Arch::Torchscript
    } else {
        p.setting.arch
    }
}

/// The setting plan whose model unit `u` of `p` runs on: a derive-data unit its source's, a
/// transfer the other setting's, everything else its own.
pub fn model_plan<'a>(plans: &'a [SettingPlan], p: &'a SettingPlan, u: &Unit) -> &'a SettingPlan {
    let other = match &u.params {
        UnitParams::Derive(d) => Some(&d.source),
        UnitParams::Transfer(t) => Some(&t.to),
        _ => None,
    };
    other
        .and_then(|name| plans.iter().find(|o| &o.setting.name == name))
        .unwrap_or(p)
}

/// The images unit `u` of the setting plan `p` pushes through its model, by kind of pass.
pub fn unit_passes(spec: &LoadedSpec, p: &SettingPlan, u: &Unit, shape: &DataShape) -> Passes {
    let q = &spec.spec.search;
    let k = shape.classes as f64;
    let subset = *q.subset_fraction.get_ref() * shape.test as f64 * (k - 1.0) / k;
    let non_target = shape.test as f64 * (k - 1.0) / k;
    let sizes = q.sizes.get_ref().len() as f64;
    let forward = |n: f64| Passes {
        forward: n,
        ..Default::default()
    };
    match &u.params {
        // The source model's representation: each step forward and backward, the targets and the
        // final distances forward.
        UnitParams::Derive(d) => Passes {
            forward: d.count as f64 * 3.0,
            search: d.count as f64 * d.steps as f64,
            ..Default::default()
        },
        UnitParams::Prepare(_) => {
            if p.setting.model.is_some() {
                // An imported model: its clean predictions on the test set.
                return forward(shape.test as f64);
            }
            let cfg = p.setting.train_config(spec.spec.seed);
            let epochs = cfg.epochs as f64;
            let pgd = match p.setting.kind {
                SettingKind::Adversarial => {
                    cfg.adversarial.as_ref().map_or(0.0, |a| a.steps as f64)
                }
                _ => 0.0,
            };
            Passes {
                forward: epochs * shape.test as f64,
                search: epochs * shape.train as f64 * pgd,
                train: epochs * shape.train as f64,
                ..Default::default()
            }
        }
        UnitParams::Search(s) => Passes {
            search: s.epochs as f64 * subset,
            ..Default::default()
        },
        // Every candidate canvas's pattern on D_n at each size, then the best one's on the
        // held-out images only (its D_n hits are counted again, not recomputed).
        UnitParams::Evaluate(e) => {
            forward(e.search_ids.len() as f64 * sizes * subset + sizes * (non_target - subset))
        }
        UnitParams::Baseline(b) => match b.method.as_str() {
            "uap" => Passes {
                forward: non_target,
                search: 5.0 * subset,
                ..Default::default()
            },
            _ => forward(b.canvases.len() as f64 * (3.0 + subset) + non_target),
        },
        UnitParams::Pictures(_) | UnitParams::Scan(_) | UnitParams::Audit(_) => Passes::default(),
        UnitParams::Cleanse(c) => {
            // Every label's mask on every clean image, forward and backward, each epoch.
            let clean = *q.subset_fraction.get_ref() * shape.test as f64;
            let n = c.budget.images.map_or(clean, |i| clean.min(i as f64));
            // The original schedule at its typical early stop, not its cap of 1,000 passes.
            let epochs = match c.schedule {
                crate::spec::CleanseSchedule::Short => c.budget.epochs,
                crate::spec::CleanseSchedule::Original => ORIGINAL_TYPICAL_EPOCHS,
            };
            Passes {
                detect: epochs as f64 * n * k,
                ..Default::default()
            }
        }
        // Every class's starts, forward and backward, each step.
        UnitParams::Margin(m) => Passes {
            detect: m.budget.steps as f64 * m.budget.starts as f64 * k,
            ..Default::default()
        },
        UnitParams::UapScan(s) => {
            // Every class's perturbation on every image, forward and backward, each epoch, then
            // the images once per class to measure it.
            let clean = *q.subset_fraction.get_ref() * shape.test as f64;
            let n = clean.min(s.budget.images as f64);
            Passes {
                forward: n * (k + 1.0),
                detect: s.budget.epochs as f64 * n * k,
                ..Default::default()
            }
        }
        // Each best pattern (one per evaluation and size) on the other model.
        UnitParams::Transfer(t) => {
            forward(t.evaluations.len() as f64 * sizes * subset + shape.test as f64)
        }
    }
}

/// Passes of Neural Cleanse's original schedule a plan counts: its early stop ends a model's labels
/// after 44–50 s on the small and GAP CNNs of `audit-population` (AMD EPYC, 2 cores), about 8
/// times the 10 passes of the short schedule there; its cap (`work::ORIGINAL_EPOCHS`, 1,000)
/// made `iscp plan` and the progress ETA say 13 h for an hour's work.
pub const ORIGINAL_TYPICAL_EPOCHS: usize = 80;

/// Image passes and multiply-adds of one unit `u` of the setting plan `p` (at its architecture's
/// assumed size: a TorchScript model counts as a ResNet-50).
pub fn unit_cost(
    spec: &LoadedSpec,
    plans: &[SettingPlan],
    p: &SettingPlan,
    u: &Unit,
    shape: &DataShape,
) -> (f64, f64) {
    let passes = unit_passes(spec, p, u, shape).image_passes();
    let arch = arch_of(model_plan(plans, p, u));
    (
        passes,
        passes * macs_per_image(arch, shape.image, shape.classes),
    )
}

/// The scheduler's measure of a unit's work, for progress and ETA: its estimated milliseconds, at
/// least one.
pub fn unit_work(seconds: f64) -> u64 {
    ((seconds * 1e3).round() as u64).max(1)
}

/// The multiply-adds a second assumed where a model was not timed (what a batched small-CNN search
/// reaches on 2 cores of an AMD EPYC).
pub const GUESS_MACS_PER_S: f64 = 25e9;

/// Seconds a unit costs beyond its passes (its lease, its inputs, its Parquet part), on a local
/// worker: measured on `make run` (see docs/benchmarks.md).
pub const UNIT_OVERHEAD_S: f64 = 0.02;

/// Seconds a prepare unit costs beyond its passes: loading or building the model, and timing it
/// for the `models` table (`sweep::work::prepare`).
pub const PREPARE_OVERHEAD_S: f64 = 0.5;

/// The seconds unit `u` costs beyond its passes.
pub fn overhead_s(u: &Unit) -> f64 {
    match u.kind {
        UnitKind::PrepareModel => UNIT_OVERHEAD_S + PREPARE_OVERHEAD_S,
        _ => UNIT_OVERHEAD_S,
    }
}

/// Cost per unit kind, in the order of `UnitKind::PLANNED` (pictures and scans pass no image
/// through a model). `rate(setting)` is the measured throughput of a setting's model, where known:
/// a kind's seconds are known when every one of its units' models was measured.
pub fn estimate(
    spec: &LoadedSpec,
    plans: &[SettingPlan],
    shape: &DataShape,
    rate: &dyn Fn(&str) -> Option<Throughput>,
) -> Vec<(&'static str, KindCost)> {
    let mut out: Vec<(&'static str, KindCost)> = UnitKind::PLANNED
        .iter()
        .map(|k| {
            (
                k.name(),
                KindCost {
                    seconds: Some(0.0),
                    ..Default::default()
                },
            )
        })
        .collect();
    for p in plans {
        for u in p.all_units() {
            let on = model_plan(plans, p, u);
            let passes = unit_passes(spec, p, u, shape);
            let i = UnitKind::PLANNED
                .iter()
                .position(|k| *k == u.kind)
                .expect("every kind");
            let c = &mut out[i].1;
            c.units += 1;
            c.image_passes += passes.image_passes();
            c.macs +=
                passes.image_passes() * macs_per_image(arch_of(on), shape.image, shape.classes);
            c.passes.add(&passes);
            c.seconds = match (c.seconds, rate(&on.setting.name)) {
                (Some(s), Some(r)) => Some(s + passes.seconds(&r) + overhead_s(u)),
                (Some(s), None) if passes == Passes::default() => Some(s + overhead_s(u)),
                _ => None,
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_cost_their_own_rates() {
        let p = Passes {
            forward: 1000.0,
            search: 300.0,
            train: 200.0,
            detect: 100.0,
        };
        assert_eq!(p.image_passes(), 1000.0 + 3.0 * 600.0);
        let r = Throughput {
            forward: 1000.0,
            search: 100.0,
            train: Some(50.0),
            detect: Some(25.0),
        };
        assert!((p.seconds(&r) - (1.0 + 3.0 + 4.0 + 4.0)).abs() < 1e-12);
        // Training and detectors not timed (an imported model, a plan without detectors): at the
        // search rate.
        let r = Throughput {
            train: None,
            detect: None,
            ..r
        };
        assert!((p.seconds(&r) - (1.0 + 3.0 + 2.0 + 1.0)).abs() < 1e-12);
        assert_eq!(Passes::default().seconds(&r), 0.0);
        assert_eq!(unit_work(0.0), 1);
        assert_eq!(unit_work(1.5), 1500);
    }
}
