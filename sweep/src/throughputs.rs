//! The measured throughput of every model a plan runs on, for `iscp plan`'s seconds: a built-in
//! architecture is timed once, freshly initialised (its cost does not depend on its weights); a
//! TorchScript file is loaded (as data, like a prepare unit does) and timed, up to a number of
//! distinct files, the rest assumed as fast as the median of those timed.

use crate::cost::DataShape;
use crate::spec::LoadedSpec;
use crate::units::{SettingPlan, UnitKind};
use iscp_engine::model::{Arch, Model, ModelMeta};
use iscp_engine::throughput::{measure, MeasureConfig, Throughput};
use std::collections::HashMap;
use tch::Device;

/// Searches a worker leases at once on `device` when `run.batch_searches` is not set: what
/// `iscp_worker::auto_max_units` chooses (256 on CUDA, 12 per libtorch thread on a CPU).
fn auto_batch(device: Device) -> usize {
    match device {
        Device::Cuda(_) => 256,
        _ => 12 * tch::get_num_threads().max(1) as usize,
    }
}

/// The measured rates of a plan's models, by setting name, and what could not be measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub by_setting: HashMap<String, Throughput>,
    /// One line for each thing measured or assumed otherwise (missing files, files over the limit).
    pub notes: Vec<String>,
    /// Distinct models timed.
    pub timed: usize,
}

/// What a setting's model is timed as: its architecture, or its TorchScript file, with the number
/// of its searches that run batched together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ModelKey {
    Builtin(Arch, usize),
    File(std::path::PathBuf, usize),
}

/// Times the models of `plans` on `device` (at most `max_files` distinct TorchScript files; the
/// others get the median of those), in the spec's `run.precision`. `progress` hears of each model
/// before it is timed.
pub fn measure_plans(
    spec: &LoadedSpec,
    plans: &[SettingPlan],
    shape: &DataShape,
    device: Device,
    max_files: usize,
    progress: &mut dyn FnMut(&str),
) -> Measured {
    let mut out = Measured::default();
    let mut timed: HashMap<ModelKey, Option<Throughput>> = HashMap::new();
    let mut over_limit = Vec::new();
    // Forward passes at the evaluation's own batch (a large model's shrinks while timing).
    let forward_batch = spec.spec.run.eval_batch_on(device).clamp(1, 4096);
    let lease = spec
        .spec
        .run
        .batch_searches
        .unwrap_or_else(|| auto_batch(device))
        .clamp(1, 256);
    let files = |t: &HashMap<ModelKey, Option<Throughput>>| {
        t.keys().filter(|k| matches!(k, ModelKey::File(..))).count()
    };
    for p in plans {
        let s = &p.setting;
        // A model's searches run batched as a lease holds them: at most `lease` at once.
        let searches = p.searches.len().clamp(1, lease);
        let key = match &s.model {
            Some(path) => ModelKey::File(path.get_ref().clone(), searches),
            None => ModelKey::Builtin(s.arch, searches),
        };
        if let Some(t) = timed.get(&key) {
            if let Some(t) = t {
                out.by_setting.insert(s.name.clone(), *t);
            }
            continue;
        }
        if matches!(key, ModelKey::File(..)) && files(&timed) >= max_files {
            over_limit.push(s.name.clone());
            continue;
        }
        progress(&s.name);
        let meta = ModelMeta {
            arch: s.model.as_ref().map_or(s.arch, |_| Arch::Torchscript),
            class_names: (0..shape.classes).map(|c| c.to_string()).collect(),
            input_shape: shape.image,
            normalize: s.normalize.clone(),
            test_accuracy: None,
        };
        // The detectors' step is timed where the plan runs one (Neural Cleanse's 32 images a
        // class a step).
        let detectors = p.all_units().any(|u| {
            matches!(
                u.kind,
                UnitKind::Cleanse | UnitKind::MaxMargin | UnitKind::UapScan
            )
        });
        let cfg = MeasureConfig {
            forward_batch,
            searches,
            train_batch: s.train_config(spec.spec.seed).batch as i64,
            detect_batch: if detectors { 32 } else { 0 },
            ..Default::default()
        };
        // A model that panics libtorch (a tensor call that cannot fail but did: out of memory)
        // is not timed; planning goes on.
        let timed_one = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let loaded = match &s.model {
                Some(path) => Model::load_torchscript(path.get_ref(), meta, device),
                None => Model::new_builtin(meta, device),
            };
            loaded
                .and_then(|mut m| measure(&mut m, &cfg, spec.spec.run.precision))
                .map_err(|e| e.to_string())
        }));
        let rate = timed_one.unwrap_or_else(|_| Err("the timing panicked".into()));
        match rate {
            Ok(r) => {
                out.timed += 1;
                out.by_setting.insert(s.name.clone(), r);
                timed.insert(key, Some(r));
            }
            Err(e) => {
                out.notes.push(format!(
                    "{}: not timed ({e}); its units are counted at --macs-per-s",
                    s.name
                ));
                timed.insert(key, None);
            }
        }
    }
    if !over_limit.is_empty() {
        let mut measured: Vec<Throughput> = timed
            .iter()
            .filter(|(k, _)| matches!(k, ModelKey::File(..)))
            .filter_map(|(_, t)| *t)
            .collect();
        if let Some(median) = median(&mut measured) {
            for name in &over_limit {
                out.by_setting.insert(name.clone(), median);
            }
            out.notes.push(format!(
                "{} more TorchScript files were not timed (--time-files {max_files}): assumed as \
                 fast as the median of the {} timed",
                over_limit.len(),
                measured.len()
            ));
        }
    }
    out
}

/// The median rate of each kind of pass over `rates` (None when empty).
fn median(rates: &mut [Throughput]) -> Option<Throughput> {
    if rates.is_empty() {
        return None;
    }
    let mid = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut f: Vec<f64> = rates.iter().map(|r| r.forward).collect();
    let mut s: Vec<f64> = rates.iter().map(|r| r.search).collect();
    let mut d: Vec<f64> = rates.iter().filter_map(|r| r.detect).collect();
    Some(Throughput {
        forward: mid(&mut f),
        search: mid(&mut s),
        train: None,
        detect: (!d.is_empty()).then(|| mid(&mut d)),
    })
}
