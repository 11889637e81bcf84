//! What the executor keeps between units: parsed specs, loaded datasets and the last model.

use super::{model_label, Executor, Failure};
use iscp_engine::data::{stratified_split, DataSplits, Split};
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_proto::v1::LeasedUnit;
use iscp_sweep::spec::{LoadedSpec, SettingSpec};
use iscp_sweep::work::{guarded, load_data, load_prepared, SearchContext};
use iscp_sweep::SweepError;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::rc::Rc;
use tch::Tensor;

/// Specs kept parsed (by the sha256 of their text).
const SPECS_KEPT: usize = 8;
/// Datasets kept loaded (by their `data` section and seed): each may be hundreds of MB.
const DATASETS_KEPT: usize = 2;

/// A spec, parsed, with its own dataset, settings and split.
pub(super) struct SpecCtx {
    pub(super) spec: LoadedSpec,
    /// The data section and seed the dataset was loaded from: what the model cache keys on too.
    pub(super) data_key: String,
    pub(super) data: Rc<DataSplits>,
    /// The spec's settings (every-class BadNets expanded), where a unit's setting is found by name.
    pub(super) settings: Vec<SettingSpec>,
    pub(super) split: Split,
    pub(super) labels: Vec<i64>,
}

pub(super) struct ModelCtx {
    pub(super) key: String,
    /// The precision its passes run in (the spec's, where this device has it).
    pub(super) precision: iscp_engine::amp::Precision,
    pub(super) model: Model,
    pub(super) clean_logits: Tensor,
    pub(super) images: Tensor,
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
    /// The unit's spec, parsed, with its own dataset (both cached by content).
    pub(super) fn spec(&mut self, u: &LeasedUnit) -> iscp_sweep::Result<Rc<SpecCtx>> {
        if let Some(ctx) = take_recent(&mut self.spec_cache, &u.spec_sha256) {
            return Ok(ctx);
        }
        let (toml, file) = self.fetch_spec(&u.spec_sha256)?;
        let spec = LoadedSpec::parse(&toml, &file)?;
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
            &mut self.spec_cache,
            u.spec_sha256.clone(),
            ctx.clone(),
            SPECS_KEPT,
        );
        Ok(ctx)
    }

    /// The text and file of the spec `sha` (a lease names it by hash), from the spec source; the
    /// text must hash to `sha`.
    fn fetch_spec(&self, sha: &str) -> iscp_sweep::Result<(String, String)> {
        let Some(source) = &self.specs else {
            return Err(SweepError::Missing(format!(
                "spec {}: this executor has no spec source",
                sha.escape_debug()
            )));
        };
        let (toml, file) = source(sha)?;
        let actual = hex::encode(Sha256::digest(toml.as_bytes()));
        if actual != sha {
            return Err(SweepError::Missing(format!(
                "spec {} fetched from the coordinator hashes to {actual}",
                sha.escape_debug()
            )));
        }
        Ok((toml, file))
    }

    /// Loads (or keeps) the setting's model and its clean logits on the spec's own test set.
    pub(super) fn model_for(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        setting: &SettingSpec,
        prepare_id: &str,
        sha: &str,
    ) -> Result<(), Failure> {
        // The logits and device images belong to one dataset, the parameters to one precision: the
        // key names both.
        let asked = ctx.spec.spec.run.precision;
        let key = format!("{}|{prepare_id}|{sha}|{}", ctx.data_key, asked.name());
        if self.model.as_ref().is_some_and(|m| m.key == key) {
            return Ok(());
        }
        self.model = None;
        let eval_batch = ctx.spec.spec.run.eval_batch_on(self.device);
        let m = guarded(|| {
            let model = load_prepared(setting, sha, data, &self.artifacts, self.device)?
                .ok_or_else(|| {
                    SweepError::Missing(format!(
                        "the model artifact {sha} is not in this worker's cache {}",
                        self.artifacts.display()
                    ))
                })?;
            let clean_logits = model
                .predict_logits(&data.test.images, eval_batch)
                .map_err(|e| SweepError::from(e).about_model(&model_label(setting, sha)))?;
            Ok((model, clean_logits))
        })?;
        let (mut model, clean_logits) = m;
        // Clean predictions are float32 (they choose canvases and D_n); the passes after them run
        // in the spec's precision where this device has it.
        let (precision, why) = model.set_precision(asked);
        if let Some(why) = why {
            if self.precision_said.insert(asked) {
                self.note(format!("run.precision = \"{}\": {why}", asked.name()));
            }
        }
        self.model = Some(ModelCtx {
            key,
            precision,
            model,
            clean_logits,
            images: data.test.images.to_device(self.device),
        });
        Ok(())
    }

    /// What the search functions need of the loaded model and the spec.
    pub(super) fn search_ctx<'a>(
        &'a self,
        ctx: &'a SpecCtx,
        data: &'a DataSplits,
    ) -> SearchContext<'a> {
        let m = self.model.as_ref().expect("model loaded");
        SearchContext {
            model: &m.model,
            test: &data.test,
            clean_logits: &m.clean_logits,
            labels: &ctx.labels,
            split: &ctx.split,
            worker: &self.worker_name,
            device: &self.device_name,
            precision: m.precision,
        }
    }

    /// An evaluator of the loaded model on the spec's test set (its search subset marked), with
    /// the spec's batch and precision.
    pub(super) fn evaluator<'a>(&'a self, ctx: &SpecCtx, data: &'a DataSplits) -> Evaluator<'a> {
        let m = self.model.as_ref().expect("loaded");
        Evaluator::new(&m.model, &data.test, &m.clean_logits, &ctx.split.search)
            .with_batch(ctx.spec.spec.run.eval_batch_on(self.device))
            .with_precision(m.precision)
    }
}
