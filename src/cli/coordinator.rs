//! `iscp coordinator`: serve the scheduler over gRPC with its ledger in a state directory.

use super::connect::{runtime, terminated};
use anyhow::Context;
use iscp_coordinator::scheduler::SchedulerConfig;
use iscp_coordinator::server::{serve, ServeOptions, TlsFiles};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct CoordinatorArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed). Loopback by
    /// default: an address other machines reach needs a token (--token-file) or --insecure.
    #[arg(long, default_value = "127.0.0.1:50051", env = "ISCP_LISTEN")]
    pub listen: String,
    /// Serve a non-loopback address without a token: anyone who reaches it can submit specs,
    /// lease units, upload artifacts and read results. Only on a network you trust.
    #[arg(long)]
    pub insecure: bool,
    /// Directory of the ledger (SQLite): keep it across restarts to resume sweeps.
    #[arg(long, default_value = "state", env = "ISCP_STATE")]
    pub state: PathBuf,
    /// Folder under which `<sweep name>/` holds the tables, pictures and model artifacts.
    #[arg(long, default_value = "results", env = "ISCP_RESULTS")]
    pub results: PathBuf,
    /// Refuse every call without `authorization: Bearer <token>`.
    #[arg(long, env = "ISCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (its first line), readable by its owner only (chmod 600). Wins
    /// over --token / ISCP_TOKEN.
    #[arg(long, env = "ISCP_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// TLS certificate (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a lease lives without a heartbeat before its units go back to the queue.
    #[arg(long, default_value_t = 30.0)]
    pub lease_ttl_s: f64,
    /// Seconds between a worker's heartbeats.
    #[arg(long, default_value_t = 5.0)]
    pub heartbeat_s: f64,
    /// Failed attempts of a unit's own (errors its worker reported) after which it is failed
    /// for good. Errors that another attempt cannot mend (bad input) fail it at once.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Expired leases (a worker that died or stopped heartbeating) after which a unit is failed
    /// for good: counted apart from its own failures, so dying workers do not fail good units.
    #[arg(long, default_value_t = 10)]
    pub max_expiries: u32,
    /// Seconds before the first retry of a failed unit; doubles per attempt, at most 60.
    #[arg(long, default_value_t = 2.0)]
    pub retry_backoff_s: f64,
    /// Largest model or checkpoint a worker may upload, in MiB (streamed to disk, never held).
    #[arg(long, default_value_t = 4096)]
    pub max_artifact_mib: u64,
    /// Largest spec a sweep may be submitted with, in KiB (every worker fetches it).
    #[arg(long, default_value_t = 1024)]
    pub max_spec_kib: usize,
}

pub fn coordinator(a: CoordinatorArgs) -> anyhow::Result<()> {
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => Some(TlsFiles {
            cert: std::fs::read(c).with_context(|| format!("reading {}", c.display()))?,
            key: std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
        }),
        _ => None,
    };
    let mut core = SchedulerConfig::new(a.state.clone(), a.results.clone());
    core.lease_ttl = Duration::from_secs_f64(a.lease_ttl_s);
    core.heartbeat = Duration::from_secs_f64(a.heartbeat_s);
    core.max_attempts = a.max_attempts.max(1);
    core.max_expiries = a.max_expiries.max(1);
    core.max_spec_bytes = a.max_spec_kib.max(1) << 10;
    core.max_artifact_bytes = a.max_artifact_mib.max(1) << 20;
    core.backoff_base = Duration::from_secs_f64(a.retry_backoff_s);
    let token = super::secret::token(&a.token, &a.token_file)?;
    let required = token.is_some();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let opts = ServeOptions {
        scheduler: core,
        token,
        tls,
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && !required && !a.insecure {
            anyhow::bail!(
                "refusing to serve {addr} without a token: anyone who reaches it could submit \
                 specs, lease units, upload files and read results. Give --token-file (or \
                 ISCP_TOKEN), listen on 127.0.0.1, or pass --insecure on a network you trust"
            );
        }
        let url = write_address(&a.state, scheme, addr)?;
        eprintln!(
            "coordinator listening on {addr} (reachable as {url}; state {}, results {}{})",
            a.state.display(),
            a.results.display(),
            if required { ", token required" } else { "" }
        );
        let served = serve(listener, opts, terminated()).await;
        // A stopped coordinator is nowhere: batch jobs wait for the next start's address.
        let _ = std::fs::remove_file(a.state.join(ADDRESS_FILE));
        served?;
        eprintln!("coordinator stopped");
        anyhow::Ok(())
    })
}

/// The file in the state folder that says where the coordinator listens (`http://HOST:PORT`):
/// batch jobs started elsewhere read it to find a coordinator that picked its port or node.
pub const ADDRESS_FILE: &str = "coordinator.address";

/// Writes `<state>/coordinator.address` (atomically): the URL workers reach this coordinator at,
/// the host's name when it listens on every interface.
fn write_address(
    state: &std::path::Path,
    scheme: &str,
    addr: std::net::SocketAddr,
) -> anyhow::Result<String> {
    let host = if addr.ip().is_unspecified() {
        super::worker::hostname()
    } else {
        addr.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}", addr.port());
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    let path = state.join(ADDRESS_FILE);
    let tmp = state.join(format!(".{ADDRESS_FILE}.tmp"));
    std::fs::write(&tmp, format!("{url}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(url)
}
