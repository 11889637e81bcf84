//! Units that measure one model: evaluations of its searches' patterns, baselines, and the
//! detectors (Neural Cleanse, MM-BD, the targeted-UAP scan).

use super::{encode, model_label, Executor, Failure, Outcome, Output, SpecCtx};
use iscp_engine::data::DataSplits;
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_proto::Table;
use iscp_sweep::spec::SettingSpec;
use iscp_sweep::tables;
use iscp_sweep::tables::DetectionRow;
use iscp_sweep::units::{BaselineParams, EvaluateParams, Received};
use iscp_sweep::work::{
    guarded, run_baseline, run_cleanse, run_evaluate, run_margin, run_uap_scan,
};
use iscp_sweep::Result as SResult;
use iscp_sweep::SweepError;
use tch::Tensor;

impl Executor {
    /// An evaluation, baseline, cleanse, max-margin or uap-scan unit.
    pub(super) fn one(&mut self, ctx: &SpecCtx, data: &DataSplits, u: &LeasedUnit) -> Outcome {
        let (setting, received) = Self::resolve(ctx, u)?;
        let prepare_id = match &received {
            Received::Evaluate(ep) => ep.prepare_id.clone(),
            Received::Baseline(bp) => bp.prepare_id.clone(),
            Received::Cleanse(cp) => cp.prepare_id.clone(),
            Received::Margin(mp) => mp.prepare_id.clone(),
            Received::UapScan(up) => up.prepare_id.clone(),
            _ => {
                return Err(Failure::new(
                    FailureReason::VersionSkew,
                    "not an evaluate or baseline unit",
                ))
            }
        };
        self.model_for(ctx, data, setting, &prepare_id, &u.model_sha256)?;
        let ev = self.evaluator(ctx, data);
        match &received {
            Received::Evaluate(ep) => self.evaluate(&ev, setting, u, ep),
            Received::Baseline(bp) => self.baseline(ctx, data, &ev, u, bp),
            Received::Cleanse(cp) => self.detector(
                ctx,
                setting,
                u,
                "Neural Cleanse index",
                |m, x, clean, pr| run_cleanse(m, x, clean, setting, &u.unit_id, cp, pr),
            ),
            Received::Margin(mp) => {
                let shape = data.test.image_shape();
                self.detector(ctx, setting, u, "MM-BD score", |m, _, _, pr| {
                    run_margin(m, shape, setting, &u.unit_id, mp, pr)
                })
            }
            Received::UapScan(up) => {
                self.detector(ctx, setting, u, "UAP index", |m, x, clean, pr| {
                    run_uap_scan(m, x, clean, setting, &u.unit_id, up, pr)
                })
            }
            _ => Err(Failure::new(
                FailureReason::VersionSkew,
                "not an evaluate or baseline unit",
            )),
        }
    }

    /// An evaluate unit: the patterns of its searches (those that succeeded), measured.
    fn evaluate(
        &self,
        ev: &Evaluator,
        setting: &SettingSpec,
        u: &LeasedUnit,
        ep: &EvaluateParams,
    ) -> Outcome {
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
                return Err(SweepError::Missing(
                    "none of its searches has a part on the coordinator".into(),
                ));
            }
            run_evaluate(ev, &u.unit_id, ep, &searches)
        })
        .map_err(|e| e.about_model(&model_label(setting, &u.model_sha256)))?;
        Ok(Output::part(encode(
            Table::Patterns,
            &tables::patterns_batch(&rows),
        )?))
    }

    /// A baseline unit: a universal perturbation (or the like) on the loaded model.
    fn baseline(
        &self,
        ctx: &SpecCtx,
        data: &DataSplits,
        ev: &Evaluator,
        u: &LeasedUnit,
        bp: &BaselineParams,
    ) -> Outcome {
        let sctx = self.search_ctx(ctx, data);
        let images = &self.model.as_ref().expect("loaded").images;
        let rows = guarded(|| run_baseline(&sctx, ev, images, &u.unit_id, bp))?;
        Ok(Output::part(encode(
            Table::Baselines,
            &tables::baselines_batch(&rows),
        )?))
    }

    /// A detector unit (cleanse, max-margin, uap-scan): `run` on the loaded model, its clean
    /// images (the search split's rows of them) and a progress callback gives the model's
    /// detection row; `what` names the score in the log line.
    fn detector(
        &self,
        ctx: &SpecCtx,
        setting: &SettingSpec,
        u: &LeasedUnit,
        what: &str,
        run: impl FnOnce(&Model, &Tensor, &[i64], &mut dyn FnMut(usize, usize)) -> SResult<DetectionRow>,
    ) -> Outcome {
        let m = self.model.as_ref().expect("loaded");
        let progress = self.progress.clone();
        let keys = [crate::shared::key_of(u)];
        let row = guarded(|| {
            run(&m.model, &m.images, &ctx.split.search, &mut |st, t| {
                Self::set_progress(&progress, &keys, st, t)
            })
        })
        .map_err(|e| e.about_model(&model_label(setting, &u.model_sha256)))?;
        self.note(format!(
            "{}: {what} {:.2}, predicted target {}{}",
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
}
