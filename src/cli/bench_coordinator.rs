//! `iscp bench-coordinator`: the coordinator alone, measured with `noop` units (no compute), at
//! several sweep sizes: units committed durably per second with 1 and with N workers on
//! loopback, submit time, submit → first lease, lease latency in the scheduler (p50/p99), the
//! status call on a full queue, peak memory, and the restart's reconcile of the whole ledger.
//! A benchmark, not a test.

use super::connect::{runtime, serve_loopback, ServerTask};
use iscp_coordinator::scheduler::{Event, EventKind, SchedulerConfig};
use iscp_coordinator::server::Service;
use iscp_worker::{Connect, WorkerError, WorkerOptions, WorkerSummary};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct BenchCoordinatorArgs {
    /// Sweep sizes to measure (noop units), e.g. 1000,100000,1000000.
    #[arg(long, default_value = "2000", value_delimiter = ',')]
    pub units: Vec<usize>,
    /// Worker counts to measure, e.g. 1,8.
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    pub workers: Vec<usize>,
    /// Units a worker leases at once, e.g. 1,16.
    #[arg(long, default_value = "1", value_delimiter = ',')]
    pub max_units: Vec<usize>,
    /// Where the ledger goes (default: a fresh folder under the system temp dir). Put it on the
    /// disk you mean to measure: every commit is synced.
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
}

/// What one measurement found.
struct Figures {
    /// Seconds from submit to the last commit.
    secs: f64,
    submit_s: f64,
    first_lease_s: f64,
    status_ms: f64,
    lease_p50_ms: f64,
    lease_p99_ms: f64,
    reconcile_s: f64,
    /// Peak RSS right after the submit (MiB).
    submit_mib: f64,
}

/// The process's peak resident memory so far, in MiB (Linux; NaN elsewhere).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Measures every combination of sweep size, worker count and lease size, and prints a row each.
pub fn bench_coordinator(a: BenchCoordinatorArgs) -> anyhow::Result<()> {
    let base = a.state.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("iscp-bench-coordinator-{}", std::process::id()))
    });
    println!(
        "coordinator benchmark: noop units, ledger under {} (SQLite WAL, group commit: one fdatasync per group of calls), {} CPUs",
        base.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>9} {:>7} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "units",
        "workers",
        "lease",
        "units/s",
        "submit s",
        "1st ms",
        "p50 ms",
        "p99 ms",
        "status ms",
        "reconc s",
        "peak MiB"
    );
    let mut sizes = a.units.clone();
    sizes.sort_unstable();
    for &n in &sizes {
        for &w in &a.workers {
            for &m in &a.max_units {
                let dir = base.join(format!("n{n}-w{w}-m{m}"));
                let _ = std::fs::remove_dir_all(&dir);
                let f = runtime()?.block_on(measure(&dir, n, w, m))?;
                println!(
                    "{:>9} {:>7} {:>5} {:>9.0} {:>9.2} {:>9.1} {:>9.2} {:>9.2} {:>9.1} {:>9.2} {:>10.0} {:>9.0}",
                    n,
                    w,
                    m,
                    n as f64 / f.secs,
                    f.submit_s,
                    f.first_lease_s * 1e3,
                    f.lease_p50_ms,
                    f.lease_p99_ms,
                    f.status_ms,
                    f.reconcile_s,
                    f.submit_mib,
                    peak_rss_mib()
                );
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
    println!("peak MiB is the benchmark process's peak so far (sizes run smallest first)");
    if a.state.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}

/// One measurement: a fresh coordinator on `dir` with `workers` workers leasing `max_units` at a
/// time, through a sweep of `units` noop units and a restart on its full ledger.
async fn measure(
    dir: &std::path::Path,
    units: usize,
    workers: usize,
    max_units: usize,
) -> anyhow::Result<Figures> {
    let mut cfg = SchedulerConfig::new(dir.join("state"), dir.join("results"));
    cfg.heartbeat = Duration::from_secs(1);
    let service = Service::open(cfg.clone())?;
    let mut events = service.subscribe();
    let (url, stop, server) = serve_loopback(&service, cfg).await?;
    let (stops, handles) = spawn_workers(&url, dir, workers, max_units);
    // Let every worker register and start long-polling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    service.submit_noop("noop", units)?;
    let submit_s = started.elapsed().as_secs_f64();
    let submit_mib = peak_rss_mib();
    let t = Instant::now();
    let _ = service.status("noop");
    let status_ms = t.elapsed().as_secs_f64() * 1e3;
    let first = wait_until_done(&mut events, started, units).await?;
    let secs = started.elapsed().as_secs_f64();
    shut_down(stops, handles, stop, server).await?;
    let (lease_p50_ms, lease_p99_ms) = lease_quantiles_ms(&service);
    drop(events);
    drop(service);
    let reconcile_s = reconcile_secs(dir)?;
    Ok(Figures {
        secs,
        submit_s,
        first_lease_s: first.unwrap_or(f64::NAN),
        status_ms,
        lease_p50_ms,
        lease_p99_ms,
        reconcile_s,
        submit_mib,
    })
}

/// A worker task, as spawned.
type WorkerTask = tokio::task::JoinHandle<Result<WorkerSummary, WorkerError>>;

/// Spawns `workers` workers of one CPU thread on `url`, each with its own cache under `dir`;
/// returns the senders that stop them and their tasks.
fn spawn_workers(
    url: &str,
    dir: &std::path::Path,
    workers: usize,
    max_units: usize,
) -> (Vec<tokio::sync::oneshot::Sender<()>>, Vec<WorkerTask>) {
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for i in 0..workers {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        let opts = WorkerOptions {
            connect: Connect {
                url: url.to_string(),
                ..Default::default()
            },
            name: format!("bench-{i}"),
            devices: vec!["cpu".into()],
            max_units,
            cache: dir.join(format!("cache-{i}")),
            grace: Duration::from_secs(1),
            threads: Some(1),
            idle_exit: None,
            notes: None,
        };
        handles.push(tokio::spawn(iscp_worker::run(opts, async {
            let _ = rx.await;
        })));
    }
    (stops, handles)
}

/// Follows the `noop` sweep's events until its `units` are all done; returns the seconds from
/// `started` to its first lease (None when no lease event was seen).
async fn wait_until_done(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    started: Instant,
    units: usize,
) -> anyhow::Result<Option<f64>> {
    let mut first = None;
    loop {
        let e = match events.recv().await {
            Ok(e) => e,
            // A watcher that falls behind skips events; the counts in the next one are current.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(e) => anyhow::bail!("events: {e}"),
        };
        if e.sweep != "noop" {
            continue;
        }
        if e.state == EventKind::Leased && first.is_none() {
            first = Some(started.elapsed().as_secs_f64());
        }
        if e.done as usize == units {
            break;
        }
    }
    Ok(first)
}

/// Stops the workers and waits for each, then stops the server and waits for it.
async fn shut_down(
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    handles: Vec<WorkerTask>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: ServerTask,
) -> anyhow::Result<()> {
    for s in stops {
        let _ = s.send(());
    }
    for h in handles {
        h.await??;
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// The scheduler's lease latency at p50 and p99, in milliseconds (NaN without leases).
fn lease_quantiles_ms(service: &Service) -> (f64, f64) {
    let ms = |q: f64| {
        service
            .lease_latency()
            .quantile(q)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    (ms(0.5), ms(0.99))
}

/// Seconds of a restart on the full ledger in `dir`: load every unit and reconcile it with the
/// part files.
fn reconcile_secs(dir: &std::path::Path) -> anyhow::Result<f64> {
    let t = Instant::now();
    let reopened = Service::open(SchedulerConfig::new(dir.join("state"), dir.join("results")))?;
    let reconcile_s = t.elapsed().as_secs_f64();
    drop(reopened);
    Ok(reconcile_s)
}
