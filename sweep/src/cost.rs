//! Cost estimates for `iscp plan`: how many images each unit kind pushes through its model and the
//! multiply-adds that makes, from the spec alone (no data is read for the known datasets).

use crate::spec::{DataKind, LoadedSpec, SettingKind};
use crate::units::{SettingPlan, UnitParams};
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

/// Cost per unit kind, in the order derive-data, prepare-model, search, evaluate, baseline,
/// pictures, scan, transfer (pictures and scans pass no image through a model).
pub fn estimate(
    spec: &LoadedSpec,
    plans: &[SettingPlan],
    shape: &DataShape,
) -> Vec<(&'static str, KindCost)> {
    let mut out: Vec<(&'static str, KindCost)> = [
        "derive-data",
        "prepare-model",
        "search",
        "evaluate",
        "baseline",
        "pictures",
        "scan",
        "transfer",
    ]
    .iter()
    .map(|k| (*k, KindCost::default()))
    .collect();
    let q = &spec.spec.search;
    let k = shape.classes as f64;
    let subset = *q.subset_fraction.get_ref() * shape.test as f64 * (k - 1.0) / k;
    let non_target = shape.test as f64 * (k - 1.0) / k;
    let sizes = q.sizes.get_ref().len() as f64;
    for p in plans {
        let arch = if p.setting.model.is_some() {
            Arch::Torchscript
        } else {
            p.setting.arch
        };
        let macs = macs_per_image(arch, shape.image, shape.classes);
        for u in &p.derives {
            if let UnitParams::Derive(d) = &u.params {
                // The source model's representation: targets once, then each step forward and
                // backward, then the final distances.
                let source = plans.iter().find(|o| o.setting.name == d.source);
                let arch = source.map_or(p.setting.arch, |o| o.setting.arch);
                let passes = d.count as f64 * (d.steps as f64 * 3.0 + 3.0);
                out[0].1.units += 1;
                out[0].1.image_passes += passes;
                out[0].1.macs += passes * macs_per_image(arch, shape.image, shape.classes);
            }
        }
        // A unit of kind `i` passing `passes` images through a model of `per` multiply-adds each.
        let mut add = |i: usize, passes: f64, per: f64| {
            out[i].1.units += 1;
            out[i].1.image_passes += passes;
            out[i].1.macs += passes * per;
        };
        let prepare = if p.setting.model.is_some() {
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
        add(1, prepare, macs);
        for u in &p.searches {
            if let UnitParams::Search(s) = &u.params {
                add(2, s.epochs as f64 * subset * 3.0, macs);
            }
        }
        for u in &p.evaluations {
            if let UnitParams::Evaluate(e) = &u.params {
                add(
                    3,
                    e.search_ids.len() as f64 * sizes * subset + sizes * non_target,
                    macs,
                );
            }
        }
        for u in &p.baselines {
            if let UnitParams::Baseline(b) = &u.params {
                let passes = match b.method.as_str() {
                    "uap" => 5.0 * subset * 3.0 + non_target,
                    _ => b.canvases.len() as f64 * (3.0 + subset) + non_target,
                };
                add(4, passes, macs);
            }
        }
        for u in &p.finishing {
            match &u.params {
                UnitParams::Pictures(_) => add(5, 0.0, macs),
                UnitParams::Scan(_) => add(6, 0.0, macs),
                UnitParams::Transfer(t) => {
                    // Each best pattern (one per evaluation and size) on the other model.
                    let to = plans.iter().find(|o| o.setting.name == t.to);
                    let arch = to.map_or(p.setting.arch, |o| {
                        if o.setting.model.is_some() {
                            Arch::Torchscript
                        } else {
                            o.setting.arch
                        }
                    });
                    let passes = t.evaluations.len() as f64 * sizes * subset + shape.test as f64;
                    add(7, passes, macs_per_image(arch, shape.image, shape.classes));
                }
                _ => {}
            }
        }
    }
    out
}
