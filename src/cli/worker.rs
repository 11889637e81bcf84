//! `iscp worker`: lease units from a coordinator and run them, one slot per device.

use super::connect::{runtime, terminated, ConnectArgs};
use iscp_worker::{run, WorkerOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Devices, one slot each: cpu, or cuda:0,cuda:1,...
    #[arg(long, default_value = "cpu", value_delimiter = ',')]
    pub devices: Vec<String>,
    /// The worker's name in status and in the `worker` column (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Most units a slot leases at once; searches on one model run as one batched optimisation.
    /// `auto`: 12 per libtorch thread on a CPU (one single-threaded lane of searches per thread),
    /// 256 on a GPU (run as many at once as its free memory holds, in turn).
    #[arg(long, default_value = "auto", value_parser = parse_max_units)]
    pub max_units: usize,
    /// Cache of model artifacts and training checkpoints (default ~/.cache/iscp/worker).
    #[arg(long, env = "ISCP_WORKER_CACHE")]
    pub cache: Option<PathBuf>,
    /// Seconds running units may take to finish after SIGTERM before they are handed back.
    #[arg(long, default_value_t = 30.0)]
    pub grace_s: f64,
    /// libtorch intra-op threads (CPU slots).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `auto` (0: chosen per device) or a count of at least 1.
fn parse_max_units(s: &str) -> Result<usize, String> {
    match s {
        "auto" => Ok(0),
        _ => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("expected `auto` or a whole number ≥ 1, got `{s}`")),
        },
    }
}

/// This machine's name (gethostname(2)), else `/etc/hostname`, else `localhost`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or fails.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(h) = std::str::from_utf8(&buf[..end]) {
            if !h.is_empty() {
                return h.to_string();
            }
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    let cache = a.cache.clone().unwrap_or_else(|| {
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
        PathBuf::from(home).join(".cache/iscp/worker")
    });
    let opts = WorkerOptions {
        connect: a.connect.to_connect()?,
        name: a.name.clone().unwrap_or_else(hostname),
        devices: a.devices.clone(),
        max_units: a.max_units,
        cache,
        grace: Duration::from_secs_f64(a.grace_s),
        threads: a.threads,
        idle_exit: None,
        notes: None,
    };
    eprintln!(
        "worker {} on {} → {}",
        opts.name,
        opts.devices.join(","),
        opts.connect.url
    );
    let s = runtime()?.block_on(run(opts, terminated()))?;
    eprintln!(
        "worker stopped: {} units completed, {} failed, {} handed back",
        s.completed, s.failed, s.handed_back
    );
    exit_now(0)
}

/// Ends the process without running static destructors: a compute thread may still be inside
/// libtorch (its units were handed back), and tearing libtorch down under it crashes the process.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit only ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}
