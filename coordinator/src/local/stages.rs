//! The stages of one setting in a local run: its model, its searches (batched), its evaluations and
//! its baselines. Each records every unit's result or failure through the `Runner`.

use super::runner::{guarded, Runner};
use super::{prepare, run_baseline, run_evaluate, search_job, search_row, RunFacts, SearchContext};
use crate::tables;
use crate::units::{SettingPlan, Unit, UnitParams};
use crate::Result;
use iscp_engine::data::DataSplits;
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::search_batch;
use tch::{Device, Tensor};

/// The setting's model: loaded if an earlier run prepared it, otherwise prepared now (trained,
/// resuming from a checkpoint, or imported). None when preparing failed.
pub(super) fn obtain_model(
    r: &mut Runner,
    p: &SettingPlan,
    spec_seed: u64,
    data: &DataSplits,
    device: Device,
) -> Result<Option<Model>> {
    let layout = r.layout.clone();
    let progress = &r.opts.progress;
    let models_dir = layout.table("models");
    if r.is_done(&p.prepare) {
        let row =
            tables::read_model_rows(&tables::part_path(&models_dir, &p.prepare.id))?.remove(0);
        if let Some(model) = prepare::load_prepared(
            &p.setting,
            &row.checkpoint_sha256,
            data,
            &layout.artifacts(),
            device,
        )? {
            return Ok(Some(model));
        }
        r.done.remove(&p.prepare.id);
    }
    let what = if p.setting.model.is_some() {
        "import"
    } else {
        "train"
    };
    progress.stage(what, &p.setting.name, 1);
    let out = guarded(|| {
        prepare(
            &p.prepare.id,
            &p.setting,
            spec_seed,
            data,
            &layout.artifacts(),
            device,
            &mut |st, t| progress.stage_step(st as u64, t as u64),
        )
    });
    match out {
        Ok(prepared) => {
            let row = &prepared.row;
            if !prepared.epochs.is_empty() {
                let batch =
                    tables::training_batch(&p.prepare.id, &p.setting.name, &prepared.epochs);
                tables::write_part(&layout.table("training"), &p.prepare.id, &batch)?;
            }
            // The models part marks the unit done, so it is written last.
            tables::write_part(
                &models_dir,
                &p.prepare.id,
                &tables::models_batch(std::slice::from_ref(row)),
            )?;
            if let Some(e) = prepared.resumed_at {
                progress.println(&format!(
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
            progress.println(&format!(
                "{}: clean accuracy {:.3}{asr}{robust} ({:.1}s)",
                p.setting.name, row.clean_accuracy, row.training_s
            ));
            r.finished(&p.prepare);
            Ok(Some(prepared.model))
        }
        Err(e) => {
            r.fail(&p.prepare, &e, true)?;
            r.opts.progress.println(&format!(
                "{}: skipping its searches, the model is missing",
                p.setting.name
            ));
            Ok(None)
        }
    }
}

/// Runs the setting's pending searches `batch` at a time as batched optimisations.
pub(super) fn run_searches(
    r: &mut Runner,
    ctx: &SearchContext,
    p: &SettingPlan,
    images: &Tensor,
    batch: usize,
) -> Result<()> {
    let searches: Vec<&Unit> = p.searches.iter().filter(|u| !r.is_done(u)).collect();
    let batches = searches.len().div_ceil(batch);
    for (b, chunk) in searches.chunks(batch).enumerate() {
        let mut jobs = Vec::new();
        let mut members = Vec::new();
        for u in chunk {
            let UnitParams::Search(sp) = &u.params else {
                continue;
            };
            match guarded(|| search_job(ctx, sp)) {
                Ok((job, index)) => {
                    jobs.push(job);
                    members.push((*u, sp, index));
                }
                Err(e) => r.fail(u, &e, false)?,
            }
        }
        if jobs.is_empty() {
            continue;
        }
        let progress = &r.opts.progress;
        progress.stage(
            "search",
            &format!(
                "{}: batch {}/{} of {} searches",
                p.setting.name,
                b + 1,
                batches,
                jobs.len()
            ),
            1,
        );
        let started = std::time::Instant::now();
        let outs = guarded(|| {
            Ok(search_batch(ctx.model, images, &jobs, &mut |st, t| {
                progress.stage_step(st as u64, t as u64)
            }))
        });
        let per_search = started.elapsed().as_secs_f64() / jobs.len() as f64;
        let outs = match outs {
            Ok(o) => o,
            Err(e) => (0..jobs.len())
                .map(|_| Err(iscp_engine::EngineError::Invalid(e.to_string())))
                .collect(),
        };
        for ((u, sp, index), out) in members.into_iter().zip(outs) {
            let facts = RunFacts {
                attempt: r.attempt(u),
                duration_s: per_search,
                batched_with: jobs.len() as i64,
            };
            let batch = out.map(|out| {
                tables::searches_batch(&[search_row(ctx, &u.id, sp, index, out, &facts)])
            });
            r.record(u, "searches", batch.map_err(Into::into), false)?;
        }
    }
    Ok(())
}

/// Evaluates the setting's pending groups on the searches of each that succeeded.
pub(super) fn run_evaluations(r: &mut Runner, ev: &Evaluator, p: &SettingPlan) -> Result<()> {
    let evals: Vec<&Unit> = p.evaluations.iter().filter(|u| !r.is_done(u)).collect();
    r.opts
        .progress
        .stage("evaluate", &p.setting.name, evals.len() as u64);
    let searches = r.layout.table("searches");
    for (i, u) in evals.iter().enumerate() {
        let UnitParams::Evaluate(ep) = &u.params else {
            continue;
        };
        let out = guarded(|| {
            let ready: Vec<&String> = ep
                .search_ids
                .iter()
                .filter(|id| r.done.contains(*id))
                .collect();
            if ready.is_empty() {
                return Err(iscp_engine::EngineError::Invalid(
                    "none of its searches succeeded".into(),
                )
                .into());
            }
            let mut rows = Vec::new();
            for id in ready {
                rows.extend(tables::read_search_rows(&tables::part_path(&searches, id))?);
            }
            run_evaluate(ev, &u.id, ep, &rows)
        });
        r.record(
            u,
            "patterns",
            out.map(|rows| tables::patterns_batch(&rows)),
            true,
        )?;
        r.opts.progress.stage_position(i as u64 + 1);
    }
    Ok(())
}

/// Runs the setting's pending baseline units (UAPs, Grad-CAM).
pub(super) fn run_baselines(
    r: &mut Runner,
    ctx: &SearchContext,
    ev: &Evaluator,
    images: &Tensor,
    p: &SettingPlan,
) -> Result<()> {
    let baselines: Vec<&Unit> = p.baselines.iter().filter(|u| !r.is_done(u)).collect();
    r.opts
        .progress
        .stage("baseline", &p.setting.name, baselines.len() as u64);
    for (i, u) in baselines.iter().enumerate() {
        let UnitParams::Baseline(bp) = &u.params else {
            continue;
        };
        let out = guarded(|| run_baseline(ctx, ev, images, &u.id, bp));
        r.record(
            u,
            "baselines",
            out.map(|rows| tables::baselines_batch(&rows)),
            false,
        )?;
        r.opts.progress.stage_position(i as u64 + 1);
    }
    Ok(())
}
