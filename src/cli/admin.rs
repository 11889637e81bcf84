//! `iscp submit`, `iscp status`, `iscp cancel`, `iscp retry-failed`: one call each to the
//! coordinator.

use super::connect::{runtime, status_error, ConnectArgs};
use anyhow::Context;
use iscp_proto::v1::*;
use iscp_worker::Client;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The experiment spec (TOML). Paths in it are read by the coordinator and the workers.
    pub spec: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Follow the sweep with progress bars until it ends.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: no bars, one line per finished stage (also when stderr is not a terminal).
    #[arg(long, requires = "watch")]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The sweep (the spec's `name`).
    pub sweep: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// One sweep (default: all).
    pub sweep: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// One call to the coordinator `connect` names: `call` on a client connected to it, its answer
/// (a refusal as a readable error).
fn one_call<T, F, Fut>(connect: &ConnectArgs, call: F) -> anyhow::Result<T>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = connect.client()?;
    let answer = rt.block_on(call(client)).map_err(status_error)?;
    Ok(answer.into_inner())
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    let source = std::fs::read_to_string(&a.spec)
        .with_context(|| format!("reading {}", a.spec.display()))?;
    let params = SubmitSpecParams {
        spec_toml: source,
        file: a.spec.display().to_string(),
    };
    let r = one_call(
        &a.connect,
        |mut c| async move { c.submit_spec(params).await },
    )?;
    println!(
        "submitted {}: {} units ({} new, {} already done)",
        r.sweep, r.units, r.new_units, r.already_done
    );
    if a.watch {
        super::watch::watch(super::watch::WatchArgs {
            sweep: r.sweep,
            connect: a.connect,
            quiet: a.quiet,
        })?;
    }
    Ok(())
}

pub fn status(a: StatusArgs) -> anyhow::Result<()> {
    let params = GetStatusParams {
        sweep: a.sweep.unwrap_or_default(),
    };
    let r = one_call(
        &a.connect,
        |mut c| async move { c.get_status(params).await },
    )?;
    for s in &r.sweeps {
        println!(
            "sweep {}{} — results in {}",
            s.sweep,
            if s.finished { " (finished)" } else { "" },
            s.results
        );
        println!(
            "  {:<14} {:>8} {:>7} {:>7} {:>7} {:>9}",
            "kind", "pending", "leased", "done", "failed", "cancelled"
        );
        for k in &s.kinds {
            println!(
                "  {:<14} {:>8} {:>7} {:>7} {:>7} {:>9}",
                k.kind, k.pending, k.leased, k.done, k.failed, k.cancelled
            );
        }
        for f in &s.failures {
            println!(
                "  failed {} {} after {} attempt(s): {}",
                f.kind, f.unit_id, f.attempts, f.error
            );
        }
    }
    if r.sweeps.is_empty() {
        println!("no sweeps");
    }
    for w in &r.workers {
        println!(
            "worker {} ({}): {} units leased, seen {:.1}s ago",
            w.name,
            w.worker_id,
            w.leased_units,
            w.last_seen_ms_ago as f64 / 1000.0
        );
    }
    Ok(())
}

pub fn cancel(a: SweepArgs) -> anyhow::Result<()> {
    let params = CancelSweepParams {
        sweep: a.sweep.clone(),
    };
    let r = one_call(
        &a.connect,
        |mut c| async move { c.cancel_sweep(params).await },
    )?;
    println!("{}: {} units cancelled", a.sweep, r.cancelled);
    Ok(())
}

pub fn retry_failed(a: SweepArgs) -> anyhow::Result<()> {
    let params = RetryFailedParams {
        sweep: a.sweep.clone(),
    };
    let r = one_call(
        &a.connect,
        |mut c| async move { c.retry_failed(params).await },
    )?;
    println!("{}: {} failed units requeued", a.sweep, r.requeued);
    Ok(())
}
