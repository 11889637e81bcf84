//! The compute side of a device slot: on its own thread, it keeps the spec, data and model of the
//! last units it ran, and runs leased units with the engine (searches that share a model as one
//! batched optimisation), turning each into Parquet parts or an error.

use iscp_coordinator::spec::LoadedSpec;
use iscp_coordinator::tables;
use iscp_coordinator::units::{plan, SettingPlan, Unit, UnitParams};
use iscp_coordinator::work::{
    artifact_path, assemble_derived, derive_shard, guarded, load_data, load_prepared, prepare,
    run_baseline, run_evaluate, search_job, search_row, Checkpoints, PrepareHooks, RunFacts,
    SearchContext,
};
use iscp_coordinator::CoordError;
use iscp_engine::data::{stratified_split, DataSplits, Split};
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::search_batch;
use iscp_proto::v1::LeasedUnit;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use tch::{Device, Tensor};

/// What a unit produced: its parts, and the model artifact a prepare unit trained.
#[derive(Debug, Default)]
pub struct Output {
    pub parts: Vec<(String, Vec<u8>)>,
    pub artifact: Option<(String, PathBuf)>,
}

/// A unit's error and whether another attempt may succeed.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub retryable: bool,
}

pub type Outcome = Result<Output, Failure>;

/// A training checkpoint written on this worker, to be uploaded so another attempt can resume it.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    pub sweep: String,
    pub unit_id: String,
    /// Epochs finished.
    pub epochs_done: usize,
    pub model: PathBuf,
    pub stats_json: String,
}

/// Steps done and total of each running unit, read by the heartbeat.
pub type ProgressMap = Arc<Mutex<HashMap<String, (u64, u64)>>>;

struct SpecCtx {
    spec: LoadedSpec,
    plans: Vec<SettingPlan>,
    /// Unit id → (plan index, unit).
    units: HashMap<String, (usize, Unit)>,
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
    specs: HashMap<String, Rc<SpecCtx>>,
    data: Option<(String, Rc<DataSplits>)>,
    model: Option<ModelCtx>,
}

/// The same retryable failure for each of `n` units (a whole lease that could not run).
pub fn all_failed(n: usize, error: impl ToString) -> Vec<Outcome> {
    let error = error.to_string();
    (0..n).map(|_| Err(fail(&error, true))).collect()
}

fn fail(e: impl ToString, retryable: bool) -> Failure {
    Failure {
        error: e.to_string(),
        retryable,
    }
}

fn encode(table: &str, batch: &arrow_array::RecordBatch) -> Result<(String, Vec<u8>), Failure> {
    tables::encode_parquet(batch)
        .map(|b| (table.to_string(), b))
        .map_err(|e| fail(format!("encoding `{table}`: {e}"), true))
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
            specs: HashMap::new(),
            data: None,
            model: None,
        }
    }

    /// Runs leased units that share a spec and model; one outcome per unit, in order.
    pub fn run(&mut self, units: &[LeasedUnit]) -> Vec<Outcome> {
        let Some(first) = units.first() else {
            return vec![];
        };
        if first.kind == "noop" {
            return units.iter().map(|_| Ok(Output::default())).collect();
        }
        let setup = guarded(|| self.spec_and_data(first)).map_err(|e| fail(e, true));
        let (ctx, data) = match setup {
            Ok(x) => x,
            Err(f) => return all_failed(units.len(), f.error),
        };
        match first.kind.as_str() {
            "derive-data" => units.iter().map(|u| self.derive(&ctx, &data, u)).collect(),
            "prepare-model" => units.iter().map(|u| self.prepare(&ctx, &data, u)).collect(),
            "search" => self.searches(&ctx, &data, units),
            "evaluate" | "baseline" => units.iter().map(|u| self.one(&ctx, &data, u)).collect(),
            k => units
                .iter()
                .map(|_| Err(fail(format!("unknown unit kind `{k}`"), false)))
                .collect(),
        }
    }

    fn spec_and_data(
        &mut self,
        u: &LeasedUnit,
    ) -> iscp_coordinator::Result<(Rc<SpecCtx>, Rc<DataSplits>)> {
        if let Some(ctx) = self.specs.get(&u.spec_sha256) {
            let data = self
                .data
                .as_ref()
                .expect("data loaded with the spec")
                .1
                .clone();
            return Ok((ctx.clone(), data));
        }
        let spec = LoadedSpec::parse(&u.spec_toml, &u.spec_file)?;
        let s = &spec.spec;
        let key = format!(
            "{}|{}",
            serde_json::to_string(&s.data).unwrap_or_default(),
            s.seed
        );
        if self.data.as_ref().is_none_or(|(k, _)| *k != key) {
            self.data = None;
            self.model = None;
            self.data = Some((key, Rc::new(load_data(&s.data, s.seed)?)));
        }
        let data = self.data.as_ref().expect("just loaded").1.clone();
        let plans = plan(&spec, data.test.num_classes(), data.train.len());
        let mut units = HashMap::new();
        for (i, p) in plans.iter().enumerate() {
            for u in p.all_units() {
                units.insert(u.id.clone(), (i, u.clone()));
            }
        }
        let labels = data.test.labels_vec();
        let split = stratified_split(
            &labels,
            data.test.num_classes(),
            *s.search.subset_fraction.get_ref(),
            s.seed,
        );
        if let (Some(t), false) = (s.run.threads, self.threads_fixed) {
            tch::set_num_threads(t as i32);
        }
        let ctx = Rc::new(SpecCtx {
            spec,
            plans,
            units,
            split,
            labels,
        });
        self.specs.insert(u.spec_sha256.clone(), ctx.clone());
        Ok((ctx, data))
    }

    fn find<'a>(ctx: &'a SpecCtx, u: &LeasedUnit) -> Result<(&'a SettingPlan, &'a Unit), Failure> {
        ctx.units
            .get(&u.unit_id)
            .map(|(i, unit)| (&ctx.plans[*i], unit))
            .ok_or_else(|| {
                fail(
                    format!(
                        "unit {} is not in its spec as this worker expands it",
                        u.unit_id
                    ),
                    false,
                )
            })
    }

    fn note(&self, line: String) {
        match &self.notes {
            Some(tx) => {
                let _ = tx.send(line);
            }
            None => tracing::info!("{line}"),
        }
    }

    fn set_progress(progress: &ProgressMap, ids: &[&str], step: usize, total: usize) {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            p.insert(id.to_string(), (step as u64, total as u64));
        }
    }

    fn prepare(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (p, _) = Self::find(ctx, u)?;
        let progress = self.progress.clone();
        let id = u.unit_id.clone();
        if u.checkpoint_epoch > 0 {
            // An earlier attempt (perhaps on another worker) got this far; its model is cached.
            let model = artifact_path(&self.artifacts, &u.checkpoint_sha256);
            Checkpoints::new(&self.artifacts, &u.unit_id)
                .install(u.checkpoint_epoch as usize, &model, &u.checkpoint_stats)
                .map_err(|e| fail(format!("installing checkpoint: {e}"), true))?;
        }
        let derived = match &p.setting.derive {
            Some(_) if u.input_artifacts.is_empty() => {
                return Err(fail("a derived setting's lease carries no shards", true))
            }
            Some(_) => {
                let parts: Vec<PathBuf> = u
                    .input_artifacts
                    .iter()
                    .map(|sha| artifact_path(&self.artifacts, sha))
                    .collect();
                let set = guarded(|| assemble_derived(&parts, data.train.class_names.clone()))
                    .map_err(|e| fail(format!("assembling the derived training set: {e}"), true))?;
                self.note(format!(
                    "{}: training on {} derived images from {} shards",
                    p.setting.name,
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
                &u.unit_id,
                &p.setting,
                ctx.spec.spec.seed,
                data,
                derived.as_ref(),
                &self.artifacts,
                self.device,
                PrepareHooks {
                    progress: &mut |st, t| Self::set_progress(&progress, &[&id], st, t),
                    checkpointed: &mut |saved| {
                        if let Some(tx) = &tx {
                            let _ = tx.send(CheckpointReport {
                                sweep: u.sweep.clone(),
                                unit_id: u.unit_id.clone(),
                                epochs_done: saved.epochs_done,
                                model: saved.model.clone(),
                                stats_json: saved.stats_json.clone(),
                            });
                        }
                    },
                },
            )
        })
        .map_err(|e| fail(e, true))?;
        let row = &prepared.row;
        if let Some(e) = prepared.resumed_at {
            self.note(format!(
                "{}: resumed training from its checkpoint after epoch {e}",
                p.setting.name
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
            p.setting.name, row.clean_accuracy, row.training_s
        ));
        let mut out = Output::default();
        out.parts.push(encode(
            "models",
            &tables::models_batch(std::slice::from_ref(row)),
        )?);
        if !prepared.epochs.is_empty() {
            let b = tables::training_batch(&u.unit_id, &p.setting.name, &prepared.epochs);
            out.parts.push(encode("training", &b)?);
        }
        if p.setting.model.is_none() {
            let path = artifact_path(&self.artifacts, &row.checkpoint_sha256);
            out.artifact = Some((row.checkpoint_sha256.clone(), path));
        }
        Ok(out)
    }

    /// A derive-data unit: one shard of a D_R / D_NR training set, on its source setting's model.
    fn derive(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (_, unit) = Self::find(ctx, u)?;
        let UnitParams::Derive(dp) = &unit.params else {
            return Err(fail("not a derive-data unit", false));
        };
        let Some(source) = ctx.plans.iter().find(|p| p.setting.name == dp.source) else {
            return Err(fail(
                format!("no setting `{}` in the spec", dp.source),
                false,
            ));
        };
        self.model_for(ctx, data, source, &u.model_sha256)?;
        let model = &self.model.as_ref().expect("loaded").model;
        let progress = self.progress.clone();
        let id = u.unit_id.clone();
        let started = std::time::Instant::now();
        let rows = guarded(|| {
            derive_shard(
                &u.unit_id,
                dp,
                model,
                &data.train,
                self.device,
                &mut |s, t| Self::set_progress(&progress, &[&id], s, t),
            )
        })
        .map_err(|e| fail(e, true))?;
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
        Ok(Output {
            parts: vec![encode("derived", &tables::derived_batch(&rows))?],
            artifact: None,
        })
    }

    /// Loads (or keeps) the setting's model and its clean logits.
    fn model_for(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        p: &SettingPlan,
        sha: &str,
    ) -> Result<(), Failure> {
        let key = format!("{}|{sha}", p.prepare.id);
        if self.model.as_ref().is_some_and(|m| m.key == key) {
            return Ok(());
        }
        self.model = None;
        let eval_batch = ctx.spec.spec.run.eval_batch as i64;
        let m = guarded(|| {
            let model = load_prepared(&p.setting, sha, data, &self.artifacts, self.device)?
                .ok_or_else(|| {
                    CoordError::table(
                        &self.artifacts,
                        format!("the model artifact {sha} is not in this worker's cache"),
                    )
                })?;
            let clean_logits = model.predict_logits(&data.test.images, eval_batch)?;
            Ok((model, clean_logits))
        })
        .map_err(|e| fail(e, true))?;
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
        }
    }

    /// Search units on one model, as one batched optimisation.
    fn searches(&mut self, ctx: &SpecCtx, data: &DataSplits, units: &[LeasedUnit]) -> Vec<Outcome> {
        let mut outs: Vec<Option<Outcome>> = units.iter().map(|_| None).collect();
        let mut members = Vec::new();
        for (i, u) in units.iter().enumerate() {
            match Self::find(ctx, u) {
                Ok((p, unit)) => match &unit.params {
                    UnitParams::Search(sp) => members.push((i, p, sp)),
                    _ => outs[i] = Some(Err(fail("not a search unit", false))),
                },
                Err(f) => outs[i] = Some(Err(f)),
            }
        }
        if let Some((_, p, _)) = members.first() {
            if let Err(f) = self.model_for(ctx, data, p, &units[members[0].0].model_sha256) {
                for (i, _, _) in &members {
                    outs[*i] = Some(Err(fail(&f.error, f.retryable)));
                }
                members.clear();
            }
        }
        let sctx = self.search_ctx(ctx, data);
        let mut jobs = Vec::new();
        let mut ran = Vec::new();
        for (i, _, sp) in &members {
            match guarded(|| search_job(&sctx, sp)) {
                Ok((job, index)) => {
                    jobs.push(job);
                    ran.push((*i, *sp, index));
                }
                Err(e) => outs[*i] = Some(Err(fail(e, false))),
            }
        }
        if !jobs.is_empty() {
            let ids: Vec<&str> = ran
                .iter()
                .map(|(i, _, _)| units[*i].unit_id.as_str())
                .collect();
            let progress = self.progress.clone();
            let images = &self.model.as_ref().expect("loaded").images;
            let started = std::time::Instant::now();
            let results = guarded(|| {
                Ok(search_batch(sctx.model, images, &jobs, &mut |st, t| {
                    Self::set_progress(&progress, &ids, st, t)
                }))
            });
            let per = started.elapsed().as_secs_f64() / jobs.len() as f64;
            let results = match results {
                Ok(r) => r,
                Err(e) => (0..jobs.len())
                    .map(|_| Err(iscp_engine::EngineError::Invalid(e.to_string())))
                    .collect(),
            };
            for ((i, sp, index), r) in ran.into_iter().zip(results) {
                let u = &units[i];
                let facts = RunFacts {
                    attempt: u.attempt as i64,
                    duration_s: per,
                    batched_with: jobs.len() as i64,
                };
                outs[i] = Some(match r {
                    Ok(o) => {
                        let row = search_row(&sctx, &u.unit_id, sp, index, o, &facts);
                        encode("searches", &tables::searches_batch(&[row])).map(|part| Output {
                            parts: vec![part],
                            artifact: None,
                        })
                    }
                    Err(e) => Err(fail(e, false)),
                });
            }
        }
        outs.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(fail("not run", true))))
            .collect()
    }

    /// An evaluation or baseline unit.
    fn one(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (p, unit) = Self::find(ctx, u)?;
        self.model_for(ctx, data, p, &u.model_sha256)?;
        let sctx = self.search_ctx(ctx, data);
        let m = self.model.as_ref().expect("loaded");
        let ev = Evaluator::new(&m.model, &data.test, &m.clean_logits, &ctx.split.search)
            .with_batch(ctx.spec.spec.run.eval_batch as i64);
        match &unit.params {
            UnitParams::Evaluate(ep) => {
                let rows = guarded(|| {
                    let mut searches = Vec::new();
                    // In the unit's order, whichever of its searches succeeded.
                    for id in &ep.search_ids {
                        if let Some(part) = u.inputs.iter().find(|i| &i.unit_id == id) {
                            searches.extend(tables::search_rows_from_bytes(&part.parquet, id)?);
                        }
                    }
                    if searches.is_empty() {
                        return Err(iscp_engine::EngineError::Invalid(
                            "none of its searches succeeded".into(),
                        )
                        .into());
                    }
                    run_evaluate(&ev, &u.unit_id, ep, &searches)
                })
                .map_err(|e| fail(e, true))?;
                Ok(Output {
                    parts: vec![encode("patterns", &tables::patterns_batch(&rows))?],
                    artifact: None,
                })
            }
            UnitParams::Baseline(bp) => {
                let rows = guarded(|| run_baseline(&sctx, &ev, &m.images, &u.unit_id, bp))
                    .map_err(|e| fail(e, false))?;
                Ok(Output {
                    parts: vec![encode("baselines", &tables::baselines_batch(&rows))?],
                    artifact: None,
                })
            }
            _ => Err(fail("not an evaluate or baseline unit", false)),
        }
    }
}
