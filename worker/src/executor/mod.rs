//! The compute side of a device slot: on its own thread, it keeps the specs, datasets and model of
//! the last units it ran (each cache keyed by what it holds, so units of two sweeps never mix), and
//! runs leased units with the engine (searches that share a model as one batched optimisation),
//! turning each into Parquet parts or a typed failure.

use iscp_engine::data::{stratified_split, DataSplits, Split};
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::search_batch;
use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_proto::Table;
use iscp_proto::UnitKey;
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::spec::SettingSpec;
use iscp_sweep::tables;
use iscp_sweep::units::{id_of, unit_id, Received, UnitKind, UnitParams};
use iscp_sweep::work::{
    artifact_path, assemble_derived, derive_shard, guarded, load_data, load_prepared, prepare,
    run_baseline, run_cleanse, run_evaluate, search_job, search_row, Checkpoints, PrepareHooks,
    RunFacts, SearchContext,
};
use iscp_sweep::CoordError;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use tch::{Device, Tensor};

mod finishing;

/// What a unit produced: its parts, the files a pictures unit drew, the model a prepare unit made
/// ready (its sha256), and the artifact to upload when it trained one.
#[derive(Debug, Default)]
pub struct Output {
    pub parts: Vec<(String, Vec<u8>)>,
    pub files: iscp_sweep::work::Files,
    pub model_sha256: Option<String>,
    pub artifact: Option<(String, PathBuf)>,
}

impl Output {
    /// Rows of one table.
    fn part(part: (String, Vec<u8>)) -> Self {
        Output {
            parts: vec![part],
            ..Output::default()
        }
    }
}

/// A unit's error and why it happened (which decides whether another attempt may succeed).
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub reason: FailureReason,
}

impl Failure {
    pub fn new(reason: FailureReason, error: impl ToString) -> Self {
        Failure {
            error: error.to_string(),
            reason,
        }
    }

    /// The error with what was being done, keeping its reason.
    fn context(what: &str, e: CoordError) -> Self {
        Failure::new(e.reason(), format!("{what}: {e}"))
    }

    pub fn retryable(&self) -> bool {
        self.reason.retryable()
    }
}

/// How failures name a setting's model: its setting and the start of its hash.
fn model_label(setting: &SettingSpec, sha: &str) -> String {
    format!(
        "the model of setting `{}` (sha256 {})",
        setting.name,
        &sha[..sha.len().min(12)]
    )
}

impl From<CoordError> for Failure {
    fn from(e: CoordError) -> Self {
        Failure::new(e.reason(), e)
    }
}

impl From<iscp_engine::EngineError> for Failure {
    fn from(e: iscp_engine::EngineError) -> Self {
        CoordError::from(e).into()
    }
}

pub type Outcome = Result<Output, Failure>;

/// A training checkpoint written on this worker, to be uploaded so another attempt can resume it.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    pub key: UnitKey,
    /// Epochs finished.
    pub epochs_done: usize,
    pub model: PathBuf,
    pub stats_json: String,
}

pub use crate::shared::ProgressMap;

/// Specs kept parsed (by the sha256 of their text).
const SPECS_KEPT: usize = 8;
/// Datasets kept loaded (by their `data` section and seed): each may be hundreds of MB.
const DATASETS_KEPT: usize = 2;

/// A spec, parsed, with its own dataset, settings and split.
struct SpecCtx {
    spec: LoadedSpec,
    /// The data section and seed the dataset was loaded from: what the model cache keys on too.
    data_key: String,
    data: Rc<DataSplits>,
    /// The spec's settings (every-class BadNets expanded), where a unit's setting is found by name.
    settings: Vec<SettingSpec>,
    split: Split,
    labels: Vec<i64>,
}

struct ModelCtx {
    key: String,
    model: Model,
    clean_logits: Tensor,
    images: Tensor,
}

pub struct Executor {
    pub device: Device,
    pub device_name: String,
    pub worker_name: String,
    /// Model artifacts and training checkpoints.
    pub artifacts: PathBuf,
    pub progress: ProgressMap,
    /// Where notes go (logged when None).
    pub notes: Option<std::sync::mpsc::Sender<String>>,
    /// Where training checkpoints are announced (uploaded by the slot's async side).
    pub checkpoints: Option<tokio::sync::mpsc::UnboundedSender<CheckpointReport>>,
    /// The worker was given a thread count: the spec's `run.threads` does not override it.
    pub threads_fixed: bool,
    /// Where finishing units read the parts of the units they depend on (None: only what the
    /// lease carries, as in tests that run units by hand).
    pub parts: Option<crate::parts::PartSource>,
    /// Most recently used first, at most `SPECS_KEPT`.
    specs: VecDeque<(String, Rc<SpecCtx>)>,
    /// Most recently used first, at most `DATASETS_KEPT`.
    datasets: VecDeque<(String, Rc<DataSplits>)>,
    model: Option<ModelCtx>,
}

/// The same failure for each of `n` units (a whole lease that could not run).
pub fn all_failed(n: usize, reason: FailureReason, error: impl ToString) -> Vec<Outcome> {
    let error = error.to_string();
    (0..n).map(|_| Err(Failure::new(reason, &error))).collect()
}

pub(crate) fn encode(
    table: Table,
    batch: &arrow_array::RecordBatch,
) -> Result<(String, Vec<u8>), Failure> {
    tables::encode_parquet(batch)
        .map(|b| (table.name().to_string(), b))
        .map_err(|e| Failure::new(FailureReason::Internal, format!("encoding `{table}`: {e}")))
}

/// Looks `key` up in a most-recently-used list and moves it to the front.
fn take_recent<T: Clone>(list: &mut VecDeque<(String, T)>, key: &str) -> Option<T> {
    let pos = list.iter().position(|(k, _)| k == key)?;
    let entry = list.remove(pos).expect("found");
    let value = entry.1.clone();
    list.push_front(entry);
    Some(value)
}

/// Puts `value` first in a most-recently-used list of at most `keep` entries.
fn keep_recent<T>(list: &mut VecDeque<(String, T)>, key: String, value: T, keep: usize) {
    list.retain(|(k, _)| *k != key);
    list.push_front((key, value));
    list.truncate(keep);
}

impl Executor {
    pub fn new(device: Device, device_name: &str, worker_name: &str, artifacts: PathBuf) -> Self {
        Executor {
            device,
            device_name: device_name.to_string(),
            worker_name: worker_name.to_string(),
            artifacts,
            progress: Arc::default(),
            notes: None,
            checkpoints: None,
            threads_fixed: false,
            parts: None,
            specs: VecDeque::new(),
            datasets: VecDeque::new(),
            model: None,
        }
    }

    /// Runs leased units that share a spec and model; one outcome per unit, in order.
    pub fn run(&mut self, units: &[LeasedUnit]) -> Vec<Outcome> {
        let Some(first) = units.first() else {
            return vec![];
        };
        if first.kind() == UnitKind::Noop {
            return units.iter().map(|_| Ok(Output::default())).collect();
        }
        let ctx = match guarded(|| self.spec(first)) {
            Ok(ctx) => ctx,
            Err(e) => {
                let f = Failure::context("loading its spec and data", e);
                return all_failed(units.len(), f.reason, f.error);
            }
        };
        if let (Some(t), false) = (ctx.spec.spec.run.threads, self.threads_fixed) {
            tch::set_num_threads(t as i32);
        }
        let data = ctx.data.clone();
        match first.kind() {
            UnitKind::DeriveData => units.iter().map(|u| self.derive(&ctx, &data, u)).collect(),
            UnitKind::PrepareModel => units.iter().map(|u| self.prepare(&ctx, &data, u)).collect(),
            UnitKind::Search => self.searches(&ctx, &data, units),
            UnitKind::Evaluate | UnitKind::Baseline | UnitKind::Cleanse => {
                units.iter().map(|u| self.one(&ctx, &data, u)).collect()
            }
            UnitKind::Pictures | UnitKind::Scan | UnitKind::Transfer | UnitKind::Audit => units
                .iter()
                .map(|u| self.finishing(&ctx, &data, u))
                .collect(),
            k => units
                .iter()
                .map(|_| {
                    Err(Failure::new(
                        FailureReason::VersionSkew,
                        format!(
                            "unknown unit kind `{k}`: this worker is older than the coordinator"
                        ),
                    ))
                })
                .collect(),
        }
    }

    /// The unit's spec, parsed, with its own dataset (both cached by content).
    fn spec(&mut self, u: &LeasedUnit) -> iscp_sweep::Result<Rc<SpecCtx>> {
        if let Some(ctx) = take_recent(&mut self.specs, &u.spec_sha256) {
            return Ok(ctx);
        }
        let spec = LoadedSpec::parse(&u.spec_toml, &u.spec_file)?;
        let s = &spec.spec;
        let data_key = format!(
            "{}|{}",
            serde_json::to_string(&s.data).unwrap_or_default(),
            s.seed
        );
        let data = match take_recent(&mut self.datasets, &data_key) {
            Some(d) => d,
            None => {
                // Make room before loading: the evicted set's memory is freed first.
                self.datasets.truncate(DATASETS_KEPT - 1);
                let d = Rc::new(load_data(&s.data, s.seed)?);
                keep_recent(
                    &mut self.datasets,
                    data_key.clone(),
                    d.clone(),
                    DATASETS_KEPT,
                );
                d
            }
        };
        let settings = spec.settings(data.test.num_classes());
        let labels = data.test.labels_vec();
        let split = stratified_split(
            &labels,
            data.test.num_classes(),
            *s.search.subset_fraction.get_ref(),
            s.seed,
        );
        let ctx = Rc::new(SpecCtx {
            spec,
            data_key,
            data,
            settings,
            split,
            labels,
        });
        keep_recent(
            &mut self.specs,
            u.spec_sha256.clone(),
            ctx.clone(),
            SPECS_KEPT,
        );
        Ok(ctx)
    }

    /// The unit as its lease describes it: its parameters (checked against its id: they are what
    /// the id hashes) and its setting, taken from the spec by name. Nothing is re-planned.
    fn resolve<'a>(
        ctx: &'a SpecCtx,
        u: &LeasedUnit,
    ) -> Result<(&'a SettingSpec, Received), Failure> {
        let skew = |what: String| {
            Failure::new(
                FailureReason::VersionSkew,
                format!(
                    "unit {} ({}): {what} (this worker: iscp {}, protocol {})",
                    u.unit_id,
                    u.kind(),
                    env!("CARGO_PKG_VERSION"),
                    iscp_proto::PROTOCOL_VERSION
                ),
            )
        };
        let kind = u.kind();
        if matches!(kind, UnitKind::Unspecified | UnitKind::Noop) {
            return Err(skew("a kind this worker does not know".into()));
        }
        if u.params_json.is_empty() {
            return Err(skew(
                "the lease carries no parameters (a coordinator or ledger from before version 2: \
                 submit the spec again)"
                    .into(),
            ));
        }
        let computed = id_of(&u.params_json);
        if computed != u.unit_id {
            return Err(skew(format!(
                "its parameters hash to {computed}, not to the id {} the coordinator planned",
                u.unit_id
            )));
        }
        let received = Received::decode(kind, &u.params_json).map_err(skew)?;
        if let (Received::Audit(_), Some(first)) = (&received, ctx.settings.first()) {
            // The audit reads the whole population and names no setting; it uses none.
            return Ok((first, received));
        }
        let name = received.setting();
        let Some(setting) = ctx.settings.iter().find(|s| s.name == name) else {
            return Err(Failure::new(
                FailureReason::InvalidInput,
                format!("unit {}: no setting `{name}` in its spec", u.unit_id),
            ));
        };
        if kind == UnitKind::PrepareModel {
            // The setting found by name is the one planned only if it gives the same id.
            let s = &ctx.spec.spec;
            let params = UnitParams::Prepare {
                setting: Box::new(setting.clone()),
                data: serde_json::to_value(&s.data).unwrap_or_default(),
                seed: s.seed,
            };
            let here = unit_id(kind, &params);
            if here != u.unit_id {
                return Err(skew(format!(
                    "the spec's setting `{name}` plans as {here} on this worker"
                )));
            }
        }
        Ok((setting, received))
    }

    fn note(&self, line: String) {
        match &self.notes {
            Some(tx) => {
                let _ = tx.send(line);
            }
            None => tracing::info!("{line}"),
        }
    }

    fn set_progress(progress: &ProgressMap, keys: &[UnitKey], step: usize, total: usize) {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            p.insert(k.clone(), (step as u64, total as u64));
        }
    }

    fn prepare(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (setting, _) = Self::resolve(ctx, u)?;
        let progress = self.progress.clone();
        let key = crate::shared::key_of(u);
        if u.checkpoint_epoch > 0 {
            // An earlier attempt (perhaps on another worker) got this far; its model is cached.
            let model = artifact_path(&self.artifacts, &u.checkpoint_sha256);
            Checkpoints::new(&self.artifacts, &key)
                .install(u.checkpoint_epoch as usize, &model, &u.checkpoint_stats)
                .map_err(|e| Failure::context("installing checkpoint", e))?;
        }
        let derived = match &setting.derive {
            Some(_) if u.input_artifacts.is_empty() => {
                return Err(Failure::new(
                    FailureReason::Internal,
                    "a derived setting's lease carries no shards",
                ))
            }
            Some(_) => {
                let parts: Vec<PathBuf> = u
                    .input_artifacts
                    .iter()
                    .map(|sha| artifact_path(&self.artifacts, sha))
                    .collect();
                let set = guarded(|| assemble_derived(&parts, data.train.class_names.clone()))
                    .map_err(|e| Failure::context("assembling the derived training set", e))?;
                self.note(format!(
                    "{}: training on {} derived images from {} shards",
                    setting.name,
                    set.len(),
                    parts.len()
                ));
                Some(set)
            }
            None => None,
        };
        let tx = self.checkpoints.clone();
        let prepared = guarded(|| {
            prepare(
                &key,
                setting,
                ctx.spec.spec.seed,
                data,
                derived.as_ref(),
                &self.artifacts,
                self.device,
                PrepareHooks {
                    progress: &mut |st, t| {
                        Self::set_progress(&progress, std::slice::from_ref(&key), st, t)
                    },
                    checkpointed: &mut |saved| {
                        if let Some(tx) = &tx {
                            let _ = tx.send(CheckpointReport {
                                key: key.clone(),
                                epochs_done: saved.epochs_done,
                                model: saved.model.clone(),
                                stats_json: saved.stats_json.clone(),
                            });
                        }
                    },
                },
            )
        })?;
        let row = &prepared.row;
        if let Some(e) = prepared.resumed_at {
            self.note(format!(
                "{}: resumed training from its checkpoint after epoch {e}",
                setting.name
            ));
        }
        let asr = row
            .attack_success_rate
            .map(|a| format!(", attack success {a:.3}"))
            .unwrap_or_default();
        let robust = row
            .robust_accuracy
            .map(|a| format!(", PGD-20 accuracy {a:.3}"))
            .unwrap_or_default();
        self.note(format!(
            "{}: clean accuracy {:.3}{asr}{robust} ({:.1}s)",
            setting.name, row.clean_accuracy, row.training_s
        ));
        let mut out = Output {
            model_sha256: Some(row.checkpoint_sha256.clone()),
            ..Output::default()
        };
        out.parts.push(encode(
            Table::Models,
            &tables::models_batch(std::slice::from_ref(row)),
        )?);
        if !prepared.epochs.is_empty() {
            let b = tables::training_batch(&u.unit_id, &setting.name, &prepared.epochs);
            out.parts.push(encode(Table::Training, &b)?);
        }
        if setting.model.is_none() {
            let path = artifact_path(&self.artifacts, &row.checkpoint_sha256);
            out.artifact = Some((row.checkpoint_sha256.clone(), path));
        }
        Ok(out)
    }

    /// A derive-data unit: one shard of a D_R / D_NR training set, on its source setting's model.
    fn derive(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        // A derive unit's setting is its source: the model it inverts.
        let (source, received) = Self::resolve(ctx, u)?;
        let Received::Derive(dp) = &received else {
            return Err(Failure::new(
                FailureReason::VersionSkew,
                "not a derive-data unit",
            ));
        };
        self.model_for(ctx, data, source, &dp.source_id, &u.model_sha256)?;
        let model = &self.model.as_ref().expect("loaded").model;
        let progress = self.progress.clone();
        let key = crate::shared::key_of(u);
        let started = std::time::Instant::now();
        let rows = guarded(|| {
            derive_shard(
                &u.unit_id,
                dp,
                model,
                &data.train,
                self.device,
                &mut |s, t| Self::set_progress(&progress, std::slice::from_ref(&key), s, t),
            )
        })?;
        let mean = |f: fn(&tables::DerivedRow) -> f64| {
            rows.iter().map(f).sum::<f64>() / rows.len().max(1) as f64
        };
        self.note(format!(
            "{}: images {}..{} rebuilt on {} ({:.1}s), mean representation distance {:.3} -> {:.3}",
            dp.setting,
            dp.start,
            dp.start + dp.count,
            dp.source,
            started.elapsed().as_secs_f64(),
            mean(|r| r.distance_start),
            mean(|r| r.distance_end)
        ));
        Ok(Output::part(encode(
            Table::Derived,
            &tables::derived_batch(&rows),
        )?))
    }

    /// Loads (or keeps) the setting's model and its clean logits on the spec's own test set.
    fn model_for(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        setting: &SettingSpec,
        prepare_id: &str,
        sha: &str,
    ) -> Result<(), Failure> {
        // The logits and device images belong to one dataset: the key names it too.
        let key = format!("{}|{prepare_id}|{sha}", ctx.data_key);
        if self.model.as_ref().is_some_and(|m| m.key == key) {
            return Ok(());
        }
        self.model = None;
        let eval_batch = ctx.spec.spec.run.eval_batch as i64;
        let m = guarded(|| {
            let model = load_prepared(setting, sha, data, &self.artifacts, self.device)?
                .ok_or_else(|| {
                    CoordError::Missing(format!(
                        "the model artifact {sha} is not in this worker's cache {}",
                        self.artifacts.display()
                    ))
                })?;
            let clean_logits = model
                .predict_logits(&data.test.images, eval_batch)
                .map_err(|e| CoordError::from(e).about_model(&model_label(setting, sha)))?;
            Ok((model, clean_logits))
        })?;
        self.model = Some(ModelCtx {
            key,
            model: m.0,
            clean_logits: m.1,
            images: data.test.images.to_device(self.device),
        });
        Ok(())
    }

    fn search_ctx<'a>(&'a self, ctx: &'a SpecCtx, data: &'a DataSplits) -> SearchContext<'a> {
        let m = self.model.as_ref().expect("model loaded");
        SearchContext {
            model: &m.model,
            test: &data.test,
            clean_logits: &m.clean_logits,
            labels: &ctx.labels,
            split: &ctx.split,
            worker: &self.worker_name,
            device: &self.device_name,
            precision: ctx.spec.spec.run.search_precision,
        }
    }

    /// Search units on one model, as one batched optimisation.
    fn searches(&mut self, ctx: &SpecCtx, data: &DataSplits, units: &[LeasedUnit]) -> Vec<Outcome> {
        let mut outs: Vec<Option<Outcome>> = units.iter().map(|_| None).collect();
        let mut members = Vec::new();
        for (i, u) in units.iter().enumerate() {
            match Self::resolve(ctx, u) {
                Ok((setting, Received::Search(sp))) => members.push((i, setting, sp)),
                Ok(_) => {
                    outs[i] = Some(Err(Failure::new(
                        FailureReason::VersionSkew,
                        "not a search unit",
                    )))
                }
                Err(f) => outs[i] = Some(Err(f)),
            }
        }
        let mut label = String::new();
        if let Some((_, setting, sp)) = members.first() {
            let (setting, prepare_id) = (*setting, sp.setting_id.clone());
            let sha = &units[members[0].0].model_sha256;
            label = model_label(setting, sha);
            if let Err(f) = self.model_for(ctx, data, setting, &prepare_id, sha) {
                for (i, _, _) in &members {
                    outs[*i] = Some(Err(Failure::new(f.reason, &f.error)));
                }
                members.clear();
            }
        }
        let unrun = |outs: Vec<Option<Outcome>>| -> Vec<Outcome> {
            outs.into_iter()
                .map(|o| o.unwrap_or_else(|| Err(Failure::new(FailureReason::Internal, "not run"))))
                .collect()
        };
        if members.is_empty() {
            // Nothing to run (every unit was refused): no model to load either.
            return unrun(outs);
        }
        let sctx = self.search_ctx(ctx, data);
        let mut jobs = Vec::new();
        let mut ran = Vec::new();
        for (i, _, sp) in &members {
            match guarded(|| search_job(&sctx, sp)) {
                Ok((job, index)) => {
                    jobs.push(job);
                    ran.push((*i, sp, index));
                }
                Err(e) => outs[*i] = Some(Err(e.into())),
            }
        }
        if !jobs.is_empty() {
            let keys: Vec<UnitKey> = ran
                .iter()
                .map(|(i, _, _)| crate::shared::key_of(&units[*i]))
                .collect();
            let progress = self.progress.clone();
            let images = &self.model.as_ref().expect("loaded").images;
            let started = std::time::Instant::now();
            let results = guarded(|| {
                Ok(search_batch(sctx.model, images, &jobs, &mut |st, t| {
                    Self::set_progress(&progress, &keys, st, t)
                }))
            });
            let per = started.elapsed().as_secs_f64() / jobs.len() as f64;
            let results: Vec<Result<_, Failure>> = match results {
                Ok(r) => r
                    .into_iter()
                    .map(|r| r.map_err(|e| CoordError::from(e).about_model(&label).into()))
                    .collect(),
                Err(e) => {
                    let (reason, error) = (e.reason(), e.to_string());
                    (0..jobs.len())
                        .map(|_| Err(Failure::new(reason, &error)))
                        .collect()
                }
            };
            for ((i, sp, index), r) in ran.into_iter().zip(results) {
                let u = &units[i];
                let facts = RunFacts {
                    attempt: u.attempt as i64,
                    duration_s: per,
                };
                outs[i] = Some(match r {
                    Ok(o) => {
                        let row = search_row(&sctx, &u.unit_id, sp, index, o, &facts);
                        encode(Table::Searches, &tables::searches_batch(&[row])).map(Output::part)
                    }
                    Err(f) => Err(f),
                });
            }
        }
        unrun(outs)
    }

    /// An evaluation or baseline unit.
    fn one(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (setting, received) = Self::resolve(ctx, u)?;
        let prepare_id = match &received {
            Received::Evaluate(ep) => ep.setting_id.clone(),
            Received::Baseline(bp) => bp.setting_id.clone(),
            Received::Cleanse(cp) => cp.setting_id.clone(),
            _ => {
                return Err(Failure::new(
                    FailureReason::VersionSkew,
                    "not an evaluate or baseline unit",
                ))
            }
        };
        self.model_for(ctx, data, setting, &prepare_id, &u.model_sha256)?;
        let sctx = self.search_ctx(ctx, data);
        let m = self.model.as_ref().expect("loaded");
        let ev = Evaluator::new(&m.model, &data.test, &m.clean_logits, &ctx.split.search)
            .with_batch(ctx.spec.spec.run.eval_batch as i64)
            .with_precision(ctx.spec.spec.run.search_precision);
        match &received {
            Received::Evaluate(ep) => {
                // Its searches' parts, read from the coordinator (none without one: tests).
                let fetch = |id: &str| match &self.parts {
                    Some(source) => source(&u.sweep, Table::Searches.name(), id),
                    None => Ok(None),
                };
                let rows = guarded(|| {
                    let mut searches = Vec::new();
                    // In the unit's order, whichever of its searches succeeded (a failed search
                    // has no part: NotFound).
                    for id in &ep.search_ids {
                        if let Some(parquet) = fetch(id)? {
                            searches.extend(tables::search_rows_from_bytes(&parquet, id)?);
                        }
                    }
                    if searches.is_empty() {
                        return Err(CoordError::Missing(
                            "none of its searches has a part on the coordinator".into(),
                        ));
                    }
                    run_evaluate(&ev, &u.unit_id, ep, &searches)
                })
                .map_err(|e| e.about_model(&model_label(setting, &u.model_sha256)))?;
                Ok(Output::part(encode(
                    Table::Patterns,
                    &tables::patterns_batch(&rows),
                )?))
            }
            Received::Baseline(bp) => {
                let rows = guarded(|| run_baseline(&sctx, &ev, &m.images, &u.unit_id, bp))?;
                Ok(Output::part(encode(
                    Table::Baselines,
                    &tables::baselines_batch(&rows),
                )?))
            }
            Received::Cleanse(cp) => {
                let progress = self.progress.clone();
                let keys = [crate::shared::key_of(u)];
                let row = guarded(|| {
                    run_cleanse(
                        &m.model,
                        &m.images,
                        &ctx.split.search,
                        setting,
                        &u.unit_id,
                        cp,
                        &mut |st, t| Self::set_progress(&progress, &keys, st, t),
                    )
                })
                .map_err(|e| e.about_model(&model_label(setting, &u.model_sha256)))?;
                self.note(format!(
                    "{}: Neural Cleanse index {:.2}, predicted target {}{}",
                    setting.name,
                    row.score,
                    row.predicted_target,
                    if row.flagged { " (flagged)" } else { "" }
                ));
                Ok(Output::part(encode(
                    Table::Detection,
                    &tables::detection_batch(&[row]),
                )?))
            }
            _ => Err(Failure::new(
                FailureReason::VersionSkew,
                "not an evaluate or baseline unit",
            )),
        }
    }
}
