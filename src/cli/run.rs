//! `iscp run SPEC`: the embedded default. The same coordinator and worker as a cluster, inside one
//! process on loopback: the ledger lives in `<results>/<name>/.state/`, so an interrupted run
//! resumes where it stopped, and the bars follow the coordinator's events.

use super::connect::{runtime, serve_loopback};
use super::progress::View;
use super::worker::hostname;
use super::SpecArgs;
use anyhow::Context;
use iscp_coordinator::scheduler::{Event, EventKind, LeaseClaim, SchedulerConfig, UnitKey};
use iscp_coordinator::server::{to_proto_event, Service};
use iscp_proto::v1::FailureReason;
use iscp_proto::Table;
use iscp_sweep::cost::data_shape;
use iscp_sweep::spec::LoadedSpec;
use iscp_worker::{Connect, WorkerOptions};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Override the spec's `run.device` (cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: Option<String>,
    /// Override the spec's `run.threads` (libtorch intra-op threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Draw no progress bars: one line per finished stage instead (also when stderr is not a
    /// terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Counts at the end of a run.
#[derive(Default)]
struct Tally {
    done: u64,
    failed: u64,
    message: String,
    /// The first units failed for good, with their reasons.
    first_failures: Vec<String>,
    /// The sweep's finished event arrived.
    finished: bool,
}

/// `iscp run` finished, but units failed for good: the process exits with `EXIT_UNITS_FAILED`.
#[derive(Debug, thiserror::Error)]
#[error("{failed} unit(s) failed for good; first: {}", first.join("; "))]
pub struct UnitsFailed {
    pub failed: u64,
    pub first: Vec<String>,
}

/// Exit status of a run that finished with units failed for good (1 is any other error).
pub const EXIT_UNITS_FAILED: i32 = 3;

/// `iscp run`: the spec run by a coordinator and a worker in this process, then its summary.
pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let spec = LoadedSpec::load(&a.spec.spec)?;
    let name = spec.spec.name.get_ref().clone();
    let root = a.spec.results.join(&name);
    let (cfg, worker) = local_options(&a, &spec, &root)?;
    let mut progress = View::new(&name, a.quiet).timed_here();
    let started = Instant::now();
    let file = a.spec.spec.display().to_string();
    let source = spec.source.clone();
    let (units, already, tally) = runtime()?
        .block_on(in_process(cfg, worker, &name, source, file, &mut progress))
        .with_context(|| format!("running {}", a.spec.spec.display()))?;
    progress.finish();
    eprintln!(
        "done in {:.1}s: {units} units, {already} already done, {} ran, {} failed; {}",
        started.elapsed().as_secs_f64(),
        tally.done.saturating_sub(already),
        tally.failed,
        tally.message
    );
    print_audit(&root);
    // The coordinator wrote the report before it said the sweep finished, naming it: its
    // path, last.
    match tally.message.split("; report ").nth(1) {
        Some(page) => println!("{page}"),
        None => eprintln!("no report was written (see the warnings above)"),
    }
    if tally.failed > 0 {
        return Err(UnitsFailed {
            failed: tally.failed,
            first: tally.first_failures,
        }
        .into());
    }
    Ok(())
}

/// The coordinator's and the worker's options for a local run, its device and classes checked.
fn local_options(
    a: &RunArgs,
    spec: &LoadedSpec,
    root: &Path,
) -> anyhow::Result<(SchedulerConfig, WorkerOptions)> {
    let s = &spec.spec;
    let device = a.device.clone().unwrap_or_else(|| s.run.device.clone());
    // A device this machine lacks ends the run here, before anything is written.
    iscp_engine::cuda::ensure(iscp_engine::parse_device(&device)?)
        .with_context(|| format!("device {device}"))?;
    // Refuse a class that does not exist before anything is written.
    let shape = data_shape(spec)?;
    spec.check_data(&shape)?;
    let mut cfg = SchedulerConfig::new(root.join(".state"), a.spec.results.clone());
    cfg.heartbeat = Duration::from_millis(500);
    cfg.backoff_base = Duration::from_millis(500);
    // The worker is on this machine: units weigh their time on its device, timed at submission.
    cfg.time_models_on = Some(device.clone());
    let worker = WorkerOptions {
        connect: Connect::default(),
        name: format!("local@{}", hostname()),
        devices: vec![device],
        // 0: the worker chooses per device.
        max_units: s.run.batch_searches.unwrap_or(0),
        // Checkpoints and models where an earlier run left them.
        cache: root.join("artifacts"),
        grace: Duration::ZERO,
        threads: a.threads.or(s.run.threads),
        idle_exit: None,
        notes: None,
    };
    Ok((cfg, worker))
}

/// Prints the newest audit part under `root`, if there is one with rows.
fn print_audit(root: &Path) {
    // A population's audit: each detector's detection quality, whether it ran now or before (the
    // newest part: an earlier version of the spec may have left its own).
    if let Some(audit) = iscp_sweep::tables::newest_audit_part(&Table::Audit.dir(root)) {
        match iscp_sweep::tables::read_audit_part(&audit) {
            Ok(rows) if !rows.is_empty() => {
                eprintln!("audit ({}):", audit.display());
                for line in iscp_sweep::audit::describe(&rows) {
                    eprintln!("  {line}");
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("the audit table could not be read: {e}"),
        }
    }
}

/// Runs the sweep with a coordinator and a worker in this process: (units, already done, tally).
async fn in_process(
    cfg: SchedulerConfig,
    mut worker: WorkerOptions,
    sweep: &str,
    source: String,
    file: String,
    progress: &mut View,
) -> anyhow::Result<(u64, u64, Tally)> {
    let root = cfg.results_dir.join(sweep);
    let service = Service::open(cfg.clone())?;
    prepare_rerun(&service, sweep, &worker.cache, progress).await?;
    let mut events = service.subscribe();
    let (url, stop_server, server) = serve_loopback(&service, cfg).await?;
    worker.connect.url = url;
    let svc = service.clone();
    let (_, units, _, already) =
        tokio::task::spawn_blocking(move || svc.submit_source(&source, &file)).await??;
    progress.note(&format!(
        "{sweep}: {units} units ({already} already done) in {}",
        root.display()
    ));
    let (notes_tx, notes) = std::sync::mpsc::channel();
    worker.notes = Some(notes_tx);
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(iscp_worker::run(worker, async {
        let _ = worker_stopped.await;
    }));
    let mut tally = follow_events(&mut events, &notes, &worker, sweep, &root, progress).await?;
    while let Ok(n) = notes.try_recv() {
        progress.note(&n);
    }
    if tally.failed > 0 && tally.first_failures.is_empty() {
        // Their events were missed (a lagging receiver): the ledger has the reasons.
        failures_from_ledger(&service, sweep, &mut tally);
    }
    let _ = stop_worker.send(());
    let worker_ended = worker.await?;
    if !tally.finished {
        let _ = stop_server.send(());
        server.await??;
        worker_ended.context("the local worker stopped")?;
        anyhow::bail!("the local worker stopped before the sweep finished");
    }
    worker_ended?;
    let _ = stop_server.send(());
    server.await??;
    Ok((units, already, tally))
}

/// Before a rerun: what failed for good tried again, the last run's crashes recorded, leases back.
async fn prepare_rerun(
    service: &Service,
    sweep: &str,
    cache: &Path,
    progress: &View,
) -> anyhow::Result<()> {
    // A rerun retries what failed for good before (with a fresh budget), as `retry-failed` would;
    // before crashes are recorded, so a unit that keeps crashing still ends failed.
    let failed_before = service
        .status(sweep)
        .first()
        .is_some_and(|s| !s.failures.is_empty());
    if failed_before {
        let svc = service.clone();
        let sweep_name = sweep.to_string();
        let n = tokio::task::spawn_blocking(move || svc.retry_failed(&sweep_name)).await??;
        progress.note(&format!(
            "{n} unit(s) that failed in an earlier run are tried again"
        ));
    }
    // Units that crashed the previous run's process (an abort inside libtorch, say) count that
    // crash as a failed attempt of their own, so one that always crashes ends failed with the
    // reason instead of crashing every run.
    for c in iscp_worker::crash::take_crashed(cache) {
        let key = UnitKey::new(c.sweep.clone(), c.unit_id.clone());
        let claim = LeaseClaim {
            worker: &c.worker_id,
            lease_id: &c.lease_id,
            attempt: c.attempt,
        };
        let why = c.message("a fatal signal");
        match service.fail_leased(&key, claim, &why, FailureReason::Internal) {
            Ok(()) => progress.note(&format!(
                "{} {} crashed the previous run",
                c.kind, c.unit_id
            )),
            Err(e) => tracing::info!("crash of {} not recorded: {e}", c.unit_id),
        }
    }
    // Nobody else works for this ledger: leases of a killed earlier run go back now.
    service.release_all_leases()?;
    Ok(())
}

/// Shows the sweep's events (and the worker's notes) until it finishes or the worker stops.
async fn follow_events<T>(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    notes: &std::sync::mpsc::Receiver<String>,
    worker: &tokio::task::JoinHandle<T>,
    sweep: &str,
    root: &Path,
    progress: &mut View,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut last_event = std::time::Instant::now();
    loop {
        while let Ok(n) = notes.try_recv() {
            progress.note(&n);
        }
        let e = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Err(_) => {
                progress.tick();
                if worker.is_finished() {
                    // The worker stopped (it could not start, or hit a fatal error): nothing will
                    // run the remaining units, so the run ends with its reason instead of waiting.
                    break;
                }
                if last_event.elapsed() > super::disk::STALL {
                    out_of_space(root)?;
                }
                continue;
            }
            // Events were dropped: forget the running units (they re-join at their next step).
            Ok(Err(RecvError::Lagged(_))) => {
                progress.resync();
                continue;
            }
            Ok(Err(RecvError::Closed)) => break,
            Ok(Ok(e)) => e,
        };
        last_event = std::time::Instant::now();
        if e.sweep != sweep {
            continue;
        }
        tally.done = e.done;
        tally.failed = e.failed;
        if e.state == EventKind::Failed && tally.first_failures.len() < 3 {
            // The first line only: libtorch's messages go on with a backtrace.
            let why = format!("{} {}: {}", e.kind, e.unit_id, reason_line(&e.message));
            tally.first_failures.push(why);
        }
        let finished = e.state == EventKind::Finished;
        let message = e.message.clone();
        progress.on(&to_proto_event(e));
        if finished {
            tally.finished = true;
            tally.message = message;
            break;
        }
    }
    Ok(tally)
}

/// An error where the disk under `root` is nearly full (the run has not moved for a while).
fn out_of_space(root: &Path) -> anyhow::Result<()> {
    let free = super::disk::free_bytes(root);
    if free.is_some_and(|b| b < super::disk::NEARLY_FULL) {
        // Nothing moved for a while and nothing can be written: no one frees the
        // disk of a local run, so it ends here (the ledger keeps what was done).
        anyhow::bail!(
            "out of space: {} has {} bytes free and the run has not moved for {} s; \
             free some space and run again to resume",
            root.display(),
            free.unwrap_or(0),
            super::disk::STALL.as_secs()
        );
    }
    Ok(())
}

/// The first failures' reasons, read from the ledger (their events were missed).
fn failures_from_ledger(service: &Service, sweep: &str, tally: &mut Tally) {
    for (id, kind, _, error) in service
        .status(sweep)
        .into_iter()
        .flat_map(|s| s.failures)
        .take(3)
    {
        let first_line = reason_line(&error);
        tally
            .first_failures
            .push(format!("{kind} {id}: {first_line}"));
    }
}

/// A failure's reason on one line of at most 300 characters: libtorch's messages go on with a
/// C++ backtrace (as real newlines, or as `\n` inside a quoted error).
fn reason_line(message: &str) -> String {
    let line = message
        .lines()
        .next()
        .unwrap_or_default()
        .split("\\n")
        .next()
        .unwrap_or_default();
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("no reason recorded");
    }
    out
}
