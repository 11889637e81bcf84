//! The local runner (`iscp run`): every unit of a spec in this process, in dependency order, skipping
//! units whose results are already in the tables, recording failures and going on.

mod baseline_unit;
mod checkpoint;
mod compare;
mod data;
mod evaluate;
mod pictures;
mod prepare;
mod search_unit;
mod transfer;

pub use baseline_unit::run_baseline;
pub use data::load_data;
pub use evaluate::{mark_best, run_evaluate};
pub use prepare::{artifact_path, prepare};
pub use search_unit::{search_job, search_row, RunFacts, SearchContext};
pub use transfer::{run_transfer, transfer_batch, TransferRow};

use crate::progress::Progress;
use crate::spec::LoadedSpec;
use crate::tables::{self, FailureRow};
use crate::units::{plan, Unit, UnitParams};
use crate::{CoordError, Result};
use iscp_engine::data::stratified_split;
use iscp_engine::model::Model;
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::search_batch;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where an experiment's results live: `<results>/<name>/{searches,patterns,models,failures,images,artifacts}`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn table(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
}

/// Counts of a finished run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub units: usize,
    pub already_done: usize,
    pub ran: usize,
    pub failed: usize,
    pub pictures: usize,
    pub results: PathBuf,
}

/// Options of a local run.
pub struct RunOptions {
    pub progress: Progress,
    pub worker: String,
}

struct Runner<'a> {
    layout: Layout,
    opts: &'a RunOptions,
    done: HashSet<String>,
    attempts: HashMap<String, i64>,
    summary: RunSummary,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Turns a panic inside libtorch code into an error, so one bad unit cannot stop the sweep.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(
                iscp_engine::EngineError::Invalid(format!("panicked: {}", msg.unwrap_or_default()))
                    .into(),
            )
        }
    }
}

impl Runner<'_> {
    fn is_done(&self, u: &Unit) -> bool {
        self.done.contains(&u.id)
    }

    fn attempt(&self, u: &Unit) -> i64 {
        self.attempts.get(&u.id).copied().unwrap_or(0) + 1
    }

    fn fail(&mut self, u: &Unit, error: &CoordError, retryable: bool) -> Result<()> {
        let attempt = self.attempt(u);
        let row = FailureRow {
            unit_id: u.id.clone(),
            unit_kind: u.kind.name().into(),
            attempt,
            worker: self.opts.worker.clone(),
            error: error.to_string(),
            retryable,
            time_ms: now_ms(),
        };
        tables::write_part(
            &self.layout.table("failures"),
            &format!("{}-a{attempt}", u.id),
            &tables::failures_batch(&[row]),
        )?;
        self.attempts.insert(u.id.clone(), attempt);
        self.opts
            .progress
            .println(&format!("failed {} {}: {error}", u.kind.name(), u.id));
        self.summary.failed += 1;
        self.opts.progress.unit_done();
        Ok(())
    }

    /// Writes a unit's rows as its part of `table`, or its failure.
    fn record(
        &mut self,
        u: &Unit,
        table: &str,
        out: Result<arrow_array::RecordBatch>,
        retryable: bool,
    ) -> Result<()> {
        match out {
            Ok(batch) => {
                tables::write_part(&self.layout.table(table), &u.id, &batch)?;
                self.finished(u);
                Ok(())
            }
            Err(e) => self.fail(u, &e, retryable),
        }
    }

    fn finished(&mut self, u: &Unit) {
        self.done.insert(u.id.clone());
        self.summary.ran += 1;
        self.opts.progress.unit_done();
    }
}

/// The backdoor scan of one setting from its best patterns, per (alpha, objective).
fn sweep_scan(
    layout: &Layout,
    p: &crate::units::SettingPlan,
    size: f64,
    progress: &Progress,
) -> Result<()> {
    let mut groups: Vec<(String, Vec<tables::PatternRow>)> = Vec::new();
    for u in &p.evaluations {
        let path = tables::part_path(&layout.table("patterns"), &u.id);
        if !path.exists() {
            continue;
        }
        for row in tables::read_pattern_rows(&path)? {
            let key = format!(
                "{}-alpha{}-{}-{}",
                p.setting.name, row.alpha, row.objective, row.variant
            )
            .replace('.', "p")
            .replace('+', "-");
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(row),
                None => groups.push((key, vec![row])),
            }
        }
    }
    for (key, rows) in groups {
        let scan_rows = crate::scan::scan_from_patterns(&key, &rows, size);
        crate::scan::write_scan(&layout.root, &key, &scan_rows, &[])?;
        progress.println(&format!("scan {key}: {}", crate::scan::verdict(&scan_rows)));
    }
    Ok(())
}

/// Runs `spec` into `<results>/<name>/`.
pub fn run(spec: &LoadedSpec, results: &Path, opts: &RunOptions) -> Result<RunSummary> {
    let s = &spec.spec;
    let device = iscp_engine::parse_device(&s.run.device)?;
    if let Some(t) = s.run.threads {
        tch::set_num_threads(t as i32);
    }
    let data = load_data(&s.data, s.seed)?;
    spec.check_classes(data.test.num_classes())?;
    let layout = Layout {
        root: results.join(s.name.get_ref()),
    };
    let plans = plan(spec, data.test.num_classes());
    let mut done = HashSet::new();
    for table in ["models", "searches", "patterns", "baselines"] {
        done.extend(tables::done_units(&layout.table(table))?);
    }
    let mut attempts: HashMap<String, i64> = HashMap::new();
    for name in tables::done_units(&layout.table("failures"))? {
        if let Some((id, a)) = name.rsplit_once("-a") {
            let a: i64 = a.parse().unwrap_or(0);
            let e = attempts.entry(id.to_string()).or_default();
            *e = (*e).max(a);
        }
    }
    let all: Vec<&Unit> = plans.iter().flat_map(|p| p.all_units()).collect();
    let already = all.iter().filter(|u| done.contains(&u.id)).count();
    let mut r = Runner {
        layout: layout.clone(),
        opts,
        done,
        attempts,
        summary: RunSummary {
            units: all.len(),
            already_done: already,
            results: layout.root.clone(),
            ..Default::default()
        },
    };
    let progress = &opts.progress;
    progress.set_total((all.len() - already) as u64);
    progress.println(&format!(
        "{}: {} units ({} already done) in {}",
        s.name.get_ref(),
        all.len(),
        already,
        layout.root.display()
    ));
    let labels = data.test.labels_vec();
    let split = stratified_split(
        &labels,
        data.test.num_classes(),
        *s.search.subset_fraction.get_ref(),
        s.seed,
    );
    let device_name = s.run.device.clone();

    for p in &plans {
        let pending: Vec<&Unit> = p.all_units().filter(|u| !r.is_done(u)).collect();
        if pending.is_empty() {
            // Nothing to compute; the scan is cheap and reads only tables (it may be new in the spec).
            if let Some(scan) = &s.scan {
                sweep_scan(&layout, p, *scan.size.get_ref(), progress)?;
            }
            continue;
        }
        // The model: load what an earlier run prepared, or prepare it now.
        let mut model: Option<Model> = None;
        let models_dir = layout.table("models");
        if r.is_done(&p.prepare) {
            let row =
                tables::read_model_rows(&tables::part_path(&models_dir, &p.prepare.id))?.remove(0);
            model = prepare::load_prepared(&p.setting, &row, &data, &layout.artifacts(), device)?;
            if model.is_none() {
                r.done.remove(&p.prepare.id);
            }
        }
        if model.is_none() {
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
                    s.seed,
                    &data,
                    &layout.artifacts(),
                    device,
                    &mut |st, t| progress.stage_step(st as u64, t as u64),
                )
            });
            match out {
                Ok(prepared) => {
                    let row = &prepared.row;
                    if !prepared.epochs.is_empty() {
                        let batch = tables::training_batch(
                            &p.prepare.id,
                            &p.setting.name,
                            &prepared.epochs,
                        );
                        tables::write_part(&layout.table("training"), &p.prepare.id, &batch)?;
                    }
                    tables::write_part(
                        &models_dir,
                        &p.prepare.id,
                        &tables::models_batch(std::slice::from_ref(row)),
                    )?;
                    if let Some(e) = prepared.resumed_at {
                        progress.println(&format!(
                            "{}: resumed training from its checkpoint after epoch {}",
                            p.setting.name, e
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
                    model = Some(prepared.model);
                }
                Err(e) => {
                    r.fail(&p.prepare, &e, true)?;
                    progress.println(&format!(
                        "{}: skipping its searches, the model is missing",
                        p.setting.name
                    ));
                    continue;
                }
            }
        }
        let model = model.expect("prepared");
        let clean_logits = model.predict_logits(&data.test.images, s.run.eval_batch as i64)?;
        let ctx = SearchContext {
            model: &model,
            test: &data.test,
            clean_logits: &clean_logits,
            labels: &labels,
            split: &split,
            worker: &opts.worker,
            device: &device_name,
        };
        let images = data.test.images.to_device(device);
        let searches: Vec<&Unit> = p.searches.iter().filter(|u| !r.is_done(u)).collect();
        let batches = searches.len().div_ceil(s.run.batch_searches);
        for (b, chunk) in searches.chunks(s.run.batch_searches).enumerate() {
            let mut jobs = Vec::new();
            let mut members = Vec::new();
            for u in chunk {
                let UnitParams::Search(sp) = &u.params else {
                    continue;
                };
                match guarded(|| search_job(&ctx, sp)) {
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
                Ok(search_batch(&model, &images, &jobs, &mut |st, t| {
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
                match out {
                    Ok(out) => {
                        let row = search_row(&ctx, &u.id, sp, index, out, &facts);
                        tables::write_part(
                            &layout.table("searches"),
                            &u.id,
                            &tables::searches_batch(&[row]),
                        )?;
                        r.finished(u);
                    }
                    Err(e) => r.fail(u, &e.into(), false)?,
                }
            }
        }
        let ev = Evaluator::new(&model, &data.test, &clean_logits, &split.search)
            .with_batch(s.run.eval_batch as i64);
        let evals: Vec<&Unit> = p.evaluations.iter().filter(|u| !r.is_done(u)).collect();
        progress.stage("evaluate", &p.setting.name, evals.len() as u64);
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
                    rows.extend(tables::read_search_rows(&tables::part_path(
                        &layout.table("searches"),
                        id,
                    ))?);
                }
                run_evaluate(&ev, &u.id, ep, &rows)
            });
            r.record(
                u,
                "patterns",
                out.map(|rows| tables::patterns_batch(&rows)),
                true,
            )?;
            progress.stage_position(i as u64 + 1);
        }
        let baselines: Vec<&Unit> = p.baselines.iter().filter(|u| !r.is_done(u)).collect();
        progress.stage("baseline", &p.setting.name, baselines.len() as u64);
        for (i, u) in baselines.iter().enumerate() {
            let UnitParams::Baseline(bp) = &u.params else {
                continue;
            };
            let out = guarded(|| run_baseline(&ctx, &ev, &images, &u.id, bp));
            r.record(
                u,
                "baselines",
                out.map(|rows| tables::baselines_batch(&rows)),
                false,
            )?;
            progress.stage_position(i as u64 + 1);
        }
        r.summary.pictures +=
            pictures::draw_setting(&layout, p, &data.test, s.search.sizes.get_ref())?;
        r.summary.pictures +=
            compare::draw_comparisons(&layout, p, &data.test, s.search.sizes.get_ref())?;
        if let Some(scan) = &s.scan {
            sweep_scan(&layout, p, *scan.size.get_ref(), progress)?;
        }
    }
    for t in s.transfer.get_ref() {
        let find = |name: &str| plans.iter().find(|p| p.setting.name == name);
        let (Some(from), Some(to)) = (find(&t.from), find(&t.to)) else {
            continue;
        };
        match run_transfer(&layout, from, to, &to.setting, &data, &split, device) {
            Ok(rows) => {
                let mean = rows
                    .iter()
                    .map(|r| r.ratio)
                    .filter(|r| r.is_finite())
                    .sum::<f64>()
                    / rows.len().max(1) as f64;
                progress.println(&format!(
                    "transfer {} → {}: {} patterns, mean PW ratio {mean:.3}",
                    t.from,
                    t.to,
                    rows.len()
                ));
            }
            Err(e) => progress.println(&format!("transfer {} → {} failed: {e}", t.from, t.to)),
        }
    }
    progress.finish();
    Ok(r.summary)
}
