//! The prepare-model unit: train a setting's model (natural or BadNets) or import a TorchScript file,
//! store it as a content-addressed artifact, and report it in the `models` table.

use super::checkpoint::{Checkpoints, Saved};
use crate::spec::{SettingKind, SettingSpec};
use crate::tables::ModelRow;
use crate::{Result, SweepError};
use iscp_engine::adversarial::{robust_accuracy, PgdConfig};
use iscp_engine::amp::Precision;
use iscp_engine::attack::Family;
use iscp_engine::badnets::{attack_success_rate, poison};
use iscp_engine::data::{load_tensor_dataset, DataSplits, Dataset};
use iscp_engine::model::{load_artifact, save_artifact, sha256_file, Arch, Model, ModelMeta};
use iscp_engine::rng::mix;
use iscp_engine::throughput::{self, MeasureConfig};
use iscp_engine::train::{train_from, EpochStats, TrainConfig, TrainRun};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// Test images the PGD-20 robust accuracy of an adversarially trained model is measured on.
pub const ROBUST_EVAL_IMAGES: usize = 1000;

/// How a prepared model is timed: short runs (a few tenths of a second in all), no training.
const PREPARE_TIMING: MeasureConfig = MeasureConfig {
    forward_batch: 256,
    searches: 24,
    train_batch: 0,
    detect_batch: 0,
    min_seconds: 0.1,
    max_bytes: throughput::DEFAULT_MAX_BYTES,
};

/// A trained BadNets model whose attack success rate is under this is `attack_failed`.
pub const ATTACK_FAILED_BELOW: f64 = 0.9;

/// `<artifacts>/<sha256>.iscpm`.
pub fn artifact_path(dir: &Path, sha: &str) -> PathBuf {
    dir.join(format!("{sha}.iscpm"))
}

fn meta_for(setting: &SettingSpec, data: &DataSplits, arch: Arch) -> ModelMeta {
    ModelMeta {
        arch,
        class_names: data.train.class_names.clone(),
        input_shape: data.train.image_shape(),
        normalize: setting.normalize.clone(),
        test_accuracy: None,
    }
}

fn load_script(
    setting: &SettingSpec,
    path: &Path,
    data: &DataSplits,
    device: Device,
) -> Result<Model> {
    let mut model =
        Model::load_torchscript(path, meta_for(setting, data, Arch::Torchscript), device)?;
    if let Some(g) = &setting.gradcam_methods {
        model.set_feature_methods(&g[0], &g[1])?;
    }
    Ok(model)
}

/// Loads the model a finished prepare unit left behind (None when its artifact is gone).
pub fn load_prepared(
    setting: &SettingSpec,
    sha: &str,
    data: &DataSplits,
    artifacts: &Path,
    device: Device,
) -> Result<Option<Model>> {
    if let Some(p) = &setting.model {
        return Ok(Some(load_script(setting, p.get_ref(), data, device)?));
    }
    let path = artifact_path(artifacts, sha);
    if !path.exists() || sha256_file(&path)? != sha {
        return Ok(None);
    }
    Ok(Some(load_artifact(&path, device)?))
}

/// What a prepare unit produced.
pub struct Prepared {
    pub model: Model,
    pub row: ModelRow,
    /// Per-epoch figures (empty for an imported model).
    pub epochs: Vec<EpochStats>,
    /// The epoch training resumed from, when it did.
    pub resumed_at: Option<usize>,
}

/// Who hears of a prepare unit's progress: training steps, and each checkpoint written.
pub struct PrepareHooks<'a> {
    pub progress: &'a mut dyn FnMut(usize, usize),
    pub checkpointed: &'a mut dyn FnMut(&Saved),
}

/// Runs the prepare unit; `progress(step, total)` follows training. Training checkpoints after
/// every epoch (`checkpointed` hears of each) and resumes from the last checkpoint of an earlier,
/// interrupted attempt. A derived setting trains on `derived` (its assembled shards).
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    unit: &iscp_proto::UnitKey,
    setting: &SettingSpec,
    spec_seed: u64,
    data: &DataSplits,
    derived: Option<&Dataset>,
    artifacts: &Path,
    device: Device,
    hooks: PrepareHooks,
) -> Result<Prepared> {
    let started = Instant::now();
    let badnets = setting.kind == SettingKind::Badnets;
    let target = badnets.then(|| setting.badnets_target());
    let mut row = model_row(unit, setting, target);
    let (mut model, epochs, resumed_at) = match &setting.model {
        Some(p) => {
            let model = import_model(setting, p.get_ref(), data, device, &mut row)?;
            (model, Vec::new(), None)
        }
        None => {
            let cfg = setting.train_config(spec_seed);
            let mut imported = None;
            let base = base_set(setting, data, derived, &mut imported)?;
            let poisoned;
            let train_set = match target {
                Some(t) => {
                    poisoned = poison_set(setting, base, t, cfg.seed, data, &mut row)?;
                    &poisoned
                }
                None => base,
            };
            let trained = train_model(
                unit, setting, &cfg, data, train_set, artifacts, device, hooks,
            )?;
            let seconds: f64 = trained.1.iter().map(|e| e.seconds).sum();
            row.train_images_per_s =
                (seconds > 0.0).then(|| (train_set.len() * trained.1.len()) as f64 / seconds);
            row.architecture = setting.arch.name().into();
            row.source = "trained".into();
            row.train_epochs = Some(cfg.epochs as i64);
            trained
        }
    };
    measure(&model, setting, target, data, &mut row)?;
    // Its speed here, for plans and ETAs: float32, no training (the model stays as it is). A
    // model too large to time within the timing's memory is not timed: the columns stay null.
    if let Ok(rate) = throughput::measure(&mut model, &PREPARE_TIMING, Precision::Fp32) {
        row.forward_images_per_s = Some(rate.forward);
        row.search_images_per_s = Some(rate.search);
    }
    model.meta.test_accuracy = Some(row.clean_accuracy);
    if setting.model.is_none() {
        row.checkpoint_sha256 = store(&model, unit, artifacts)?;
    }
    row.training_s = started.elapsed().as_secs_f64();
    Ok(Prepared {
        model,
        row,
        epochs,
        resumed_at,
    })
}

/// The setting's `models` row before its model is made (BadNets settings name their target, and a
/// trained one its trigger).
fn model_row(unit: &iscp_proto::UnitKey, setting: &SettingSpec, target: Option<i64>) -> ModelRow {
    let badnets = setting.kind == SettingKind::Badnets;
    ModelRow {
        unit_id: unit.unit.to_string(),
        setting: setting.name.clone(),
        setting_kind: setting.kind.name().to_string(),
        architecture: String::new(),
        source: String::new(),
        checkpoint_sha256: String::new(),
        clean_accuracy: 0.0,
        attack_success_rate: None,
        poison_target: target,
        trigger: (badnets && setting.model.is_none() && setting.family() == Family::Patch)
            .then(|| setting.trigger.unwrap_or_default().name().to_string()),
        trigger_family: (badnets && (setting.model.is_none() || setting.trigger_family.is_some()))
            .then(|| setting.family().name().to_string()),
        trigger_row: setting.trigger_box.map(|b| b[0]),
        trigger_col: setting.trigger_box.map(|b| b[1]),
        trigger_size: setting.trigger_box.map(|b| b[2]),
        attack_failed: None,
        robust_accuracy: None,
        poison_rate: None,
        poisoned_images: None,
        train_epochs: None,
        training_s: 0.0,
        forward_images_per_s: None,
        search_images_per_s: None,
        train_images_per_s: None,
    }
}

/// Imports the setting's TorchScript file (the row names it and its hash).
fn import_model(
    setting: &SettingSpec,
    path: &Path,
    data: &DataSplits,
    device: Device,
    row: &mut ModelRow,
) -> Result<Model> {
    let model = load_script(setting, path, data, device)?;
    row.architecture = Arch::Torchscript.name().into();
    row.source = "imported".into();
    row.checkpoint_sha256 = sha256_file(path)?;
    Ok(model)
}

/// The set a setting trains on (before any poisoning): `derived` (its assembled shards), its
/// `train_tensors` (loaded into `imported`), or else the dataset's own training split. Images of
/// another shape than the test set's are refused.
fn base_set<'a>(
    setting: &SettingSpec,
    data: &'a DataSplits,
    derived: Option<&'a Dataset>,
    imported: &'a mut Option<Dataset>,
) -> Result<&'a Dataset> {
    match (&setting.train_tensors, derived) {
        (_, Some(d)) => {
            if d.image_shape() != data.test.image_shape() {
                return Err(iscp_engine::EngineError::Invalid(format!(
                    "derived images of shape {:?}, but the test set's are {:?}",
                    d.image_shape(),
                    data.test.image_shape()
                ))
                .into());
            }
            Ok(d)
        }
        (Some(dir), None) => {
            let set: &Dataset = imported.insert(load_tensor_dataset(
                dir.get_ref(),
                data.train.class_names.clone(),
            )?);
            if set.image_shape() != data.test.image_shape() {
                return Err(iscp_engine::EngineError::Invalid(format!(
                    "{}: images of shape {:?}, but the test set's are {:?}",
                    dir.get_ref().display(),
                    set.image_shape(),
                    data.test.image_shape()
                ))
                .into());
            }
            Ok(set)
        }
        (None, None) => Ok(&data.train),
    }
}

/// A BadNets setting's training set: `base` with its trigger on a share of the images, labelled
/// `target` (the row notes the share and how many images).
fn poison_set(
    setting: &SettingSpec,
    base: &Dataset,
    target: i64,
    seed: u64,
    data: &DataSplits,
    row: &mut ModelRow,
) -> Result<Dataset> {
    let (set, count) = poison(
        base,
        target,
        setting.poison_rate(),
        mix(&[seed, 0xBAD]),
        &setting.attack(data.test.image_shape())?,
    )?;
    row.poison_rate = Some(setting.poison_rate());
    row.poisoned_images = Some(count as i64);
    Ok(set)
}

/// Trains the setting's model on `train_set`, from the last checkpoint of an interrupted attempt
/// (or afresh, seeded), checkpointing after every epoch; the checkpoints go once it is done. The
/// model, every epoch's figures, and the epoch training resumed from.
#[allow(clippy::too_many_arguments)]
fn train_model(
    unit: &iscp_proto::UnitKey,
    setting: &SettingSpec,
    cfg: &TrainConfig,
    data: &DataSplits,
    train_set: &Dataset,
    artifacts: &Path,
    device: Device,
    hooks: PrepareHooks,
) -> Result<(Model, Vec<EpochStats>, Option<usize>)> {
    let PrepareHooks {
        progress,
        checkpointed,
    } = hooks;
    let mut epochs = Vec::new();
    let mut resumed_at = None;
    let checkpoints = Checkpoints::new(artifacts, unit);
    let (mut model, resume) = match checkpoints.latest(device)? {
        Some(r) => {
            resumed_at = Some(r.stats.len());
            epochs = r.stats;
            (r.model, r.optim)
        }
        None => {
            tch::manual_seed(cfg.seed as i64);
            let meta = meta_for(setting, data, setting.arch);
            (Model::new_builtin(meta, device)?, None)
        }
    };
    let mut so_far = epochs.clone();
    let run = TrainRun {
        start_epoch: epochs.len(),
        resume,
        test: Some(&data.test),
        progress: &mut |s, t, _| progress(s, t),
        epoch_end: &mut |m, optim, e| {
            so_far.push(e.clone());
            let saved = checkpoints
                .save(m, optim, &so_far)
                .map_err(|e| iscp_engine::EngineError::Invalid(format!("checkpoint: {e}")))?;
            if let Some(s) = &saved {
                checkpointed(s);
            }
            Ok(())
        },
    };
    epochs.extend(train_from(&mut model, train_set, cfg, run)?);
    checkpoints.clear();
    Ok((model, epochs, resumed_at))
}

/// The model's figures on the test set, in the row: its clean accuracy, a trained BadNets model's
/// attack success (and where its trigger went), an adversarially trained model's PGD-20 accuracy.
fn measure(
    model: &Model,
    setting: &SettingSpec,
    target: Option<i64>,
    data: &DataSplits,
    row: &mut ModelRow,
) -> Result<()> {
    row.clean_accuracy = model
        .accuracy(&data.test.images, &data.test.labels)
        .map_err(|e| {
            let what = match &setting.model {
                Some(p) => format!(
                    "the model {} of setting `{}`",
                    p.get_ref().display(),
                    setting.name
                ),
                None => format!("the model trained for setting `{}`", setting.name),
            };
            SweepError::from(e).about_model(&what)
        })?;
    // A given model's trigger is unknown (at most its box): its attack success is not measured.
    if let (Some(t), None) = (target, &setting.model) {
        let attack = setting.attack(data.test.image_shape())?;
        let asr = attack_success_rate(model, &data.test, t, &attack)?;
        row.attack_success_rate = Some(asr);
        row.attack_failed = Some(asr < ATTACK_FAILED_BELOW);
        if let iscp_engine::attack::Attack::Patch(placed) = &attack {
            row.trigger_row = Some(placed.y0);
            row.trigger_col = Some(placed.x0);
            row.trigger_size = Some(placed.size);
        }
    }
    if setting.kind == SettingKind::Adversarial {
        row.robust_accuracy = Some(robust_accuracy(
            model,
            &data.test,
            &PgdConfig::pgd20(),
            ROBUST_EVAL_IMAGES,
            256,
        )?);
    }
    Ok(())
}

/// Stores a trained model as a content-addressed artifact (written aside, then renamed into
/// place): its sha256.
fn store(model: &Model, unit: &iscp_proto::UnitKey, artifacts: &Path) -> Result<String> {
    std::fs::create_dir_all(artifacts).map_err(|e| crate::SweepError::io(artifacts, e))?;
    let tmp = artifacts.join(format!("{}-{}.iscpm.partial", unit.sweep, unit.unit));
    let sha = save_artifact(model, &tmp)?;
    let dest = artifact_path(artifacts, &sha);
    std::fs::rename(&tmp, &dest).map_err(|e| crate::SweepError::io(&dest, e))?;
    Ok(sha)
}
