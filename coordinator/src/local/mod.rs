//! The local runner (`iscp run`): every unit of a spec in this process, in dependency order, skipping
//! units whose results are already in the tables, recording failures and going on.

mod baseline_unit;
mod checkpoint;
mod compare;
mod data;
mod evaluate;
mod finish;
mod pictures;
mod prepare;
mod runner;
mod search_unit;
mod stages;
mod sweep_scan;
mod transfer;

pub use baseline_unit::run_baseline;
pub use data::load_data;
pub use evaluate::{mark_best, run_evaluate};
pub use finish::{finish, finish_spec, Finished};
pub use prepare::{artifact_path, load_prepared, prepare, Prepared};
pub use runner::guarded;
pub use search_unit::{search_job, search_row, RunFacts, SearchContext};
pub use transfer::{run_transfer, transfer_batch, TransferRow};

use crate::progress::Progress;
use crate::spec::LoadedSpec;
use crate::tables;
use crate::units::{plan, Unit};
use crate::Result;
use iscp_engine::data::stratified_split;
use iscp_engine::pattern::Evaluator;
use runner::Runner;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

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

/// A number for a file name: `.` written as `p` (0.2 → `0p2`).
pub(crate) fn fmt_num(v: f64) -> String {
    format!("{v}").replace('.', "p")
}

/// The name of an evaluation group in file names: `<setting>-alpha<α>-<objective>[-<variant>]`,
/// the variant's `+` written as `-`.
pub(crate) fn group_name(
    setting: &str,
    alpha: f64,
    objective: &str,
    variant: Option<&str>,
) -> String {
    let base = format!("{setting}-alpha{}-{objective}", fmt_num(alpha));
    match variant {
        Some(v) => format!("{base}-{}", v.replace('+', "-")),
        None => base,
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
            continue;
        }
        let Some(model) = stages::obtain_model(&mut r, p, s.seed, &data, device)? else {
            continue;
        };
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
        stages::run_searches(&mut r, &ctx, p, &images, s.run.batch_searches)?;
        let ev = Evaluator::new(&model, &data.test, &clean_logits, &split.search)
            .with_batch(s.run.eval_batch as i64);
        stages::run_evaluations(&mut r, &ev, p)?;
        stages::run_baselines(&mut r, &ctx, &ev, &images, p)?;
    }
    let finished = finish(spec, &layout, &plans, &data, device, progress)?;
    r.summary.pictures = finished.pictures;
    progress.finish();
    Ok(r.summary)
}
