//! Cost estimates for `iscp plan`: how many images each unit kind pushes through its model and the
//! multiply-adds that makes, from the spec alone (no data is read for the known datasets).

use crate::spec::{DataKind, LoadedSpec, SettingKind};
use crate::units::{SettingPlan, Unit, UnitKind, UnitParams};
use iscp_engine::model::Arch;

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

/// Images through the model (a training or search image counts 3: forward and backward) and
/// multiply-adds, for one unit kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KindCost {
    pub units: usize,
    pub image_passes: f64,
    pub macs: f64,
}

/// The architecture a setting's model is counted as (a TorchScript model as a ResNet-50).
fn arch_of(p: &SettingPlan) -> Arch {
    if p.setting.model.is_some() {
        Arch::Torchscript
    } else {
        p.setting.arch
    }
}

/// Image passes and multiply-adds of one unit `u` of the setting plan `p`.
pub fn unit_cost(
    spec: &LoadedSpec,
    plans: &[SettingPlan],
    p: &SettingPlan,
    u: &Unit,
    shape: &DataShape,
) -> (f64, f64) {
    let q = &spec.spec.search;
    let k = shape.classes as f64;
    let subset = *q.subset_fraction.get_ref() * shape.test as f64 * (k - 1.0) / k;
    let non_target = shape.test as f64 * (k - 1.0) / k;
    let sizes = q.sizes.get_ref().len() as f64;
    let macs = |arch: Arch| macs_per_image(arch, shape.image, shape.classes);
    let on = |passes: f64, arch: Arch| (passes, passes * macs(arch));
    match &u.params {
        UnitParams::Derive(d) => {
            // The source model's representation: targets once, then each step forward and
            // backward, then the final distances.
            let source = plans.iter().find(|o| o.setting.name == d.source);
            let arch = source.map_or(p.setting.arch, |o| o.setting.arch);
            on(d.count as f64 * (d.steps as f64 * 3.0 + 3.0), arch)
        }
        UnitParams::Prepare(_) => {
            let passes = if p.setting.model.is_some() {
                shape.test as f64
            } else {
                let cfg = p.setting.train_config(spec.spec.seed);
                let attack = match p.setting.kind {
                    SettingKind::Adversarial => cfg
                        .adversarial
                        .as_ref()
                        .map_or(0.0, |a| a.steps as f64 * 3.0),
                    _ => 0.0,
                };
                cfg.epochs as f64 * (shape.train as f64 * (3.0 + attack) + shape.test as f64)
            };
            on(passes, arch_of(p))
        }
        UnitParams::Search(s) => on(s.epochs as f64 * subset * 3.0, arch_of(p)),
        UnitParams::Evaluate(e) => on(
            e.search_ids.len() as f64 * sizes * subset + sizes * non_target,
            arch_of(p),
        ),
        UnitParams::Baseline(b) => {
            let passes = match b.method.as_str() {
                "uap" => 5.0 * subset * 3.0 + non_target,
                _ => b.canvases.len() as f64 * (3.0 + subset) + non_target,
            };
            on(passes, arch_of(p))
        }
        UnitParams::Pictures(_) | UnitParams::Scan(_) | UnitParams::Audit(_) => (0.0, 0.0),
        UnitParams::Cleanse(c) => {
            // Every label's mask on every clean image, forward and backward, each epoch.
            let clean = *q.subset_fraction.get_ref() * shape.test as f64;
            let n = c.budget.images.map_or(clean, |i| clean.min(i as f64));
            // The original schedule's cap: an upper bound (its early stop usually ends sooner).
            let epochs = match c.schedule {
                crate::spec::CleanseSchedule::Short => c.budget.epochs,
                crate::spec::CleanseSchedule::Original => crate::work::ORIGINAL_EPOCHS,
            };
            on(epochs as f64 * n * k * 3.0, arch_of(p))
        }
        UnitParams::Margin(m) => {
            // Every class's starts, forward and backward, each step.
            on(
                m.budget.steps as f64 * m.budget.starts as f64 * k * 3.0,
                arch_of(p),
            )
        }
        UnitParams::UapScan(u) => {
            // Every class's perturbation on every image, forward and backward, each epoch, then
            // the images once per class to measure it.
            let clean = *q.subset_fraction.get_ref() * shape.test as f64;
            let n = clean.min(u.budget.images as f64);
            on(
                u.budget.epochs as f64 * n * k * 3.0 + n * (k + 1.0),
                arch_of(p),
            )
        }
        UnitParams::Transfer(t) => {
            // Each best pattern (one per evaluation and size) on the other model.
            let to = plans.iter().find(|o| o.setting.name == t.to);
            let arch = to.map_or(p.setting.arch, arch_of);
            on(
                t.evaluations.len() as f64 * sizes * subset + shape.test as f64,
                arch,
            )
        }
    }
}

/// The scheduler's measure of a unit's work, for progress and ETA: its multiply-adds in millions,
/// at least `MIN_UNIT_WORK` (a unit that passes no image through a model still reads, draws and
/// writes: pictures, scans).
pub fn unit_work(macs: f64) -> u64 {
    ((macs / 1e6).round() as u64).max(MIN_UNIT_WORK)
}

/// The least work a unit counts for: a million multiply-adds a thousand times, about 40 ms of a
/// 2-core CPU.
pub const MIN_UNIT_WORK: u64 = 1_000;

/// Cost per unit kind, in the order of `UnitKind::PLANNED` (pictures and scans pass no image
/// through a model).
pub fn estimate(
    spec: &LoadedSpec,
    plans: &[SettingPlan],
    shape: &DataShape,
) -> Vec<(&'static str, KindCost)> {
    let mut out: Vec<(&'static str, KindCost)> = UnitKind::PLANNED
        .iter()
        .map(|k| (k.name(), KindCost::default()))
        .collect();
    for p in plans {
        for u in p.all_units() {
            let (passes, macs) = unit_cost(spec, plans, p, u, shape);
            let i = UnitKind::PLANNED
                .iter()
                .position(|k| *k == u.kind)
                .expect("every kind");
            out[i].1.units += 1;
            out[i].1.image_passes += passes;
            out[i].1.macs += macs;
        }
    }
    out
}
