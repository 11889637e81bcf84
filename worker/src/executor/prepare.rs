//! The units that make a setting's model: derive-data shards and the prepare-model unit itself.

use super::{encode, CheckpointReport, Executor, Failure, Outcome, Output, SpecCtx};
use iscp_engine::data::{DataSplits, Dataset};
use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_proto::Table;
use iscp_proto::UnitKey;
use iscp_sweep::spec::SettingSpec;
use iscp_sweep::tables;
use iscp_sweep::units::Received;
use iscp_sweep::work::{
    artifact_path, assemble_derived, derive_shard, guarded, Checkpoints, PrepareHooks, Prepared,
};
use std::path::PathBuf;

impl Executor {
    /// A prepare-model unit: trains (or imports) its setting's model, from where an earlier
    /// attempt's checkpoint left off.
    pub(super) fn prepare(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (setting, _) = Self::resolve(ctx, u)?;
        let key = crate::shared::key_of(u);
        if u.checkpoint_epoch > 0 {
            self.install_checkpoint(u, &key)?;
        }
        let derived = self.derived_set(setting, data, u)?;
        let prepared = self.train(ctx, data, setting, &key, derived.as_ref())?;
        self.prepared_output(setting, u, &prepared)
    }

    /// Installs the checkpoint an earlier attempt (perhaps on another worker) got to: its model is
    /// cached.
    fn install_checkpoint(&self, u: &LeasedUnit, key: &UnitKey) -> Result<(), Failure> {
        let model = artifact_path(&self.artifacts, &u.checkpoint_sha256);
        Checkpoints::new(&self.artifacts, key)
            .install(u.checkpoint_epoch as usize, &model, &u.checkpoint_stats)
            .map_err(|e| Failure::context("installing checkpoint", e))?;
        Ok(())
    }

    /// A derived setting's training set, assembled from the shards its lease carries (None for
    /// any other setting).
    fn derived_set(
        &self,
        setting: &SettingSpec,
        data: &DataSplits,
        u: &LeasedUnit,
    ) -> Result<Option<Dataset>, Failure> {
        match &setting.derive {
            Some(_) if u.input_artifacts.is_empty() => Err(Failure::new(
                FailureReason::Internal,
                "a derived setting's lease carries no shards",
            )),
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
                Ok(Some(set))
            }
            None => Ok(None),
        }
    }

    /// Trains (or imports) the setting's model, following its progress and announcing each
    /// checkpoint written.
    fn train(
        &self,
        ctx: &SpecCtx,
        data: &DataSplits,
        setting: &SettingSpec,
        key: &UnitKey,
        derived: Option<&Dataset>,
    ) -> Result<Prepared, Failure> {
        let progress = self.progress.clone();
        let tx = self.checkpoints.clone();
        let prepared = guarded(|| {
            iscp_sweep::work::prepare(
                key,
                setting,
                ctx.spec.spec.seed,
                data,
                derived,
                &self.artifacts,
                self.device,
                PrepareHooks {
                    progress: &mut |st, t| {
                        Self::set_progress(&progress, std::slice::from_ref(key), st, t)
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
        Ok(prepared)
    }

    /// Notes how the model came out; its parts (its `models` row, its training epochs) and the
    /// artifact to upload when it was trained here.
    fn prepared_output(
        &self,
        setting: &SettingSpec,
        u: &LeasedUnit,
        prepared: &Prepared,
    ) -> Outcome {
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
    pub(super) fn derive(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        // A derive unit's setting is its source: the model it inverts.
        let (source, received) = Self::resolve(ctx, u)?;
        let Received::Derive(dp) = &received else {
            return Err(Failure::new(
                FailureReason::VersionSkew,
                "not a derive-data unit",
            ));
        };
        self.model_for(ctx, data, source, &dp.source_prepare_id, &u.model_sha256)?;
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
}
