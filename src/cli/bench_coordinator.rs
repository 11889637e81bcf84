//! `iscp bench-coordinator`: the coordinator alone, measured with `noop` units (no compute): units
//! committed durably per second with 1 and with N workers on loopback, and the time from submit to
//! the first lease. A benchmark, not a test.

use super::connect::runtime;
use iscp_coordinator::service::{serve_with, CoreConfig, ServeOptions, Service};
use iscp_worker::{Connect, WorkerOptions};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct BenchCoordinatorArgs {
    /// Noop units per measurement.
    #[arg(long, default_value_t = 2000)]
    pub units: usize,
    /// Worker counts to measure, e.g. 1,8.
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    pub workers: Vec<usize>,
    /// Units a worker leases at once.
    #[arg(long, default_value_t = 1)]
    pub max_units: usize,
    /// Where the ledger goes (default: a fresh folder under the system temp dir). Put it on the
    /// disk you mean to measure: every commit is synced.
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
}

pub fn bench_coordinator(a: BenchCoordinatorArgs) -> anyhow::Result<()> {
    let base = a.state.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("iscp-bench-coordinator-{}", std::process::id()))
    });
    println!(
        "coordinator benchmark: {} noop units per run, ledger under {} (SQLite WAL, synchronous=FULL)",
        a.units,
        base.display()
    );
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>16}",
        "workers", "max_units", "seconds", "units/s", "submit→lease ms"
    );
    for &w in &a.workers {
        let dir = base.join(format!("w{w}"));
        let _ = std::fs::remove_dir_all(&dir);
        let (secs, first) = runtime()?.block_on(measure(&dir, a.units, w, a.max_units))?;
        println!(
            "{:>8} {:>10} {:>12.2} {:>12.0} {:>16.1}",
            w,
            a.max_units,
            secs,
            a.units as f64 / secs,
            first * 1e3
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    if a.state.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}

/// (seconds from submit to the last commit, seconds from submit to the first lease).
async fn measure(
    dir: &std::path::Path,
    units: usize,
    workers: usize,
    max_units: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut cfg = CoreConfig::new(dir.join("state"), dir.join("results"));
    cfg.heartbeat = Duration::from_secs(1);
    let service = Service::open(cfg.clone())?;
    let mut events = service.subscribe();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        core: cfg,
        token: None,
        tls: None,
    };
    let server = tokio::spawn(serve_with(listener, service.clone(), opts, async {
        let _ = stopped.await;
    }));
    let mut stops = Vec::new();
    let mut handles = Vec::new();
    for i in 0..workers {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        let opts = WorkerOptions {
            connect: Connect {
                url: url.clone(),
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
    // Let every worker register and start long-polling.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    service.submit_noop("noop", units)?;
    let mut first = None;
    loop {
        let e = events.recv().await?;
        if e.sweep != "noop" {
            continue;
        }
        if e.state == iscp_coordinator::service::EventKind::Leased && first.is_none() {
            first = Some(started.elapsed().as_secs_f64());
        }
        if e.done as usize == units {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    for s in stops {
        let _ = s.send(());
    }
    for h in handles {
        h.await??;
    }
    let _ = stop.send(());
    server.await??;
    Ok((secs, first.unwrap_or(f64::NAN)))
}
