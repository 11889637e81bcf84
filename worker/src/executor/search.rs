//! Search units: those that share a model run as one batched optimisation.

use super::{encode, model_label, Executor, Failure, Outcome, Output, SpecCtx};
use iscp_engine::data::DataSplits;
use iscp_engine::search::{search_batch, SearchJob, SearchOutcome};
use iscp_engine::EngineError;
use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_proto::Table;
use iscp_proto::UnitKey;
use iscp_sweep::spec::SettingSpec;
use iscp_sweep::tables;
use iscp_sweep::units::{Received, SearchParams};
use iscp_sweep::work::{guarded, search_job, search_row, RunFacts, SearchContext};
use iscp_sweep::SweepError;

/// A search unit to run: its place in the lease, its setting and its parameters.
type Member<'a> = (usize, &'a SettingSpec, SearchParams);

/// A search whose job was made: its place in the lease, its parameters and its canvas index.
type Ran<'m> = (usize, &'m SearchParams, i64);

impl Executor {
    /// Search units on one model, as one batched optimisation.
    pub(super) fn searches(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        units: &[LeasedUnit],
    ) -> Vec<Outcome> {
        let mut outs: Vec<Option<Outcome>> = units.iter().map(|_| None).collect();
        let mut members = Self::search_members(ctx, units, &mut outs);
        let label = self.search_model(ctx, data, units, &mut members, &mut outs);
        // Nothing to run (every unit was refused): no model to load either.
        if !members.is_empty() {
            self.run_searches(ctx, data, units, &members, &label, &mut outs);
        }
        outs.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Failure::new(FailureReason::Internal, "not run"))))
            .collect()
    }

    /// The units that are searches, as their leases describe them; the others fail here.
    fn search_members<'a>(
        ctx: &'a SpecCtx,
        units: &[LeasedUnit],
        outs: &mut [Option<Outcome>],
    ) -> Vec<Member<'a>> {
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
        members
    }

    /// Loads the model of the first search (the one they all share) and returns how failures
    /// name it; when it cannot be loaded, every search fails with that error and none is left.
    fn search_model(
        &mut self,
        ctx: &SpecCtx,
        data: &DataSplits,
        units: &[LeasedUnit],
        members: &mut Vec<Member<'_>>,
        outs: &mut [Option<Outcome>],
    ) -> String {
        let mut label = String::new();
        if let Some((_, setting, sp)) = members.first() {
            let (setting, prepare_id) = (*setting, sp.prepare_id.clone());
            let sha = &units[members[0].0].model_sha256;
            label = model_label(setting, sha);
            if let Err(f) = self.model_for(ctx, data, setting, &prepare_id, sha) {
                for (i, _, _) in members.iter() {
                    outs[*i] = Some(Err(Failure::new(f.reason, &f.error)));
                }
                members.clear();
            }
        }
        label
    }

    /// Runs the searches on the loaded model, as one batch, and puts each one's outcome in `outs`.
    fn run_searches(
        &self,
        ctx: &SpecCtx,
        data: &DataSplits,
        units: &[LeasedUnit],
        members: &[Member<'_>],
        label: &str,
        outs: &mut [Option<Outcome>],
    ) {
        let sctx = self.search_ctx(ctx, data);
        let (jobs, ran) = Self::search_jobs(&sctx, members, outs);
        if jobs.is_empty() {
            return;
        }
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
        let results = batch_outcomes(results, jobs.len(), label);
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

    /// Each search's job (and canvas index); a search whose job cannot be made fails here.
    fn search_jobs<'m>(
        sctx: &SearchContext,
        members: &'m [Member<'_>],
        outs: &mut [Option<Outcome>],
    ) -> (Vec<SearchJob>, Vec<Ran<'m>>) {
        let mut jobs = Vec::new();
        let mut ran = Vec::new();
        for (i, _, sp) in members {
            match guarded(|| search_job(sctx, sp)) {
                Ok((job, index)) => {
                    jobs.push(job);
                    ran.push((*i, sp, index));
                }
                Err(e) => outs[*i] = Some(Err(e.into())),
            }
        }
        (jobs, ran)
    }
}

/// The batch's outcome for each of its `n` searches, a failure naming the model (`label`); the
/// batch's own failure (a panic) for each of them when it failed as a whole.
fn batch_outcomes(
    results: iscp_sweep::Result<Vec<Result<SearchOutcome, EngineError>>>,
    n: usize,
    label: &str,
) -> Vec<Result<SearchOutcome, Failure>> {
    match results {
        Ok(r) => r
            .into_iter()
            .map(|r| r.map_err(|e| SweepError::from(e).about_model(label).into()))
            .collect(),
        Err(e) => {
            let (reason, error) = (e.reason(), e.to_string());
            (0..n).map(|_| Err(Failure::new(reason, &error))).collect()
        }
    }
}
