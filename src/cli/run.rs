//! `iscp run SPEC`: the embedded default. The same coordinator and worker as a cluster, inside one
//! process on loopback: the ledger lives in `<results>/<name>/.state/`, so an interrupted run
//! resumes where it stopped, and the bars follow the coordinator's events.

use super::connect::runtime;
use super::progress::View;
use super::worker::hostname;
use super::SpecArgs;
use anyhow::Context;
use iscp_coordinator::service::{
    serve_with, to_proto_event, CoreConfig, EventKind, ServeOptions, Service,
};
use iscp_sweep::cost::known_shape;
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::work::load_data;
use iscp_worker::{Connect, WorkerOptions};
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

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let spec = LoadedSpec::load(&a.spec.spec)?;
    let s = &spec.spec;
    let name = s.name.get_ref().clone();
    let root = a.spec.results.join(&name);
    let device = a.device.clone().unwrap_or_else(|| s.run.device.clone());
    iscp_engine::parse_device(&device)?;
    // Refuse a class that does not exist before anything is written.
    let classes = match known_shape(&spec) {
        Some(shape) => shape.classes,
        None => load_data(&s.data, s.seed)?.test.num_classes(),
    };
    spec.check_classes(classes)?;
    let mut cfg = CoreConfig::new(root.join(".state"), a.spec.results.clone());
    cfg.heartbeat = Duration::from_millis(500);
    cfg.backoff_base = Duration::from_millis(500);
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
    let mut progress = View::new(&name, a.quiet);
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
    // A population's audit: each detector's detection quality, whether it ran now or before (the
    // newest part: an earlier version of the spec may have left its own).
    let newest = std::fs::read_dir(root.join("audit")).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
            .map(|(_, p)| p)
    });
    if let Some(audit) = newest {
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

async fn in_process(
    cfg: CoreConfig,
    mut worker: WorkerOptions,
    sweep: &str,
    source: String,
    file: String,
    progress: &mut View,
) -> anyhow::Result<(u64, u64, Tally)> {
    let root = cfg.results_dir.join(sweep);
    let service = Service::open(cfg.clone())?;
    // Nobody else works for this ledger: leases of a killed earlier run go back now.
    service.release_all_leases()?;
    let mut events = service.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    worker.connect.url = format!("http://{}", listener.local_addr()?);
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        core: cfg,
        token: None,
        tls: None,
    };
    let server = tokio::spawn(serve_with(listener, service.clone(), opts, async {
        let _ = server_stopped.await;
    }));
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
    let mut tally = Tally::default();
    loop {
        while let Ok(n) = notes.try_recv() {
            progress.note(&n);
        }
        let e = match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Err(_) => {
                progress.tick();
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
        if e.sweep != sweep {
            continue;
        }
        tally.done = e.done;
        tally.failed = e.failed;
        if e.state == EventKind::Failed && tally.first_failures.len() < 3 {
            // The first line only: libtorch's messages go on with a backtrace.
            let first_line = e.message.lines().next().unwrap_or_default();
            let why = format!("{} {}: {first_line}", e.kind, e.unit_id);
            tally.first_failures.push(why);
        }
        let finished = e.state == EventKind::Finished;
        let message = e.message.clone();
        progress.on(&to_proto_event(e));
        if finished {
            tally.message = message;
            break;
        }
    }
    while let Ok(n) = notes.try_recv() {
        progress.note(&n);
    }
    let _ = stop_worker.send(());
    worker.await??;
    let _ = stop_server.send(());
    server.await??;
    Ok((units, already, tally))
}
