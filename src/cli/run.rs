//! `iscp run SPEC`: the embedded default, every unit in this process with progress bars.

use super::SpecArgs;
use anyhow::Context;
use iscp_coordinator::local::{run as run_local, RunOptions};
use iscp_coordinator::progress::Progress;
use iscp_coordinator::spec::LoadedSpec;

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
    /// Draw no progress bars (log lines only).
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: RunArgs) -> anyhow::Result<()> {
    let mut spec = LoadedSpec::load(&a.spec.spec)?;
    if let Some(d) = a.device {
        spec.spec.run.device = d;
    }
    if a.threads.is_some() {
        spec.spec.run.threads = a.threads;
    }
    let progress = if a.quiet {
        Progress::hidden()
    } else {
        Progress::new(0)
    };
    let opts = RunOptions {
        progress,
        worker: format!("local@{}", hostname()),
    };
    let started = std::time::Instant::now();
    let s = run_local(&spec, &a.spec.results, &opts)
        .with_context(|| format!("running {}", a.spec.spec.display()))?;
    eprintln!(
        "done in {:.1}s: {} units, {} already done, {} ran, {} failed; {} pictures; results in {}",
        started.elapsed().as_secs_f64(),
        s.units,
        s.already_done,
        s.ran,
        s.failed,
        s.pictures,
        s.results.display()
    );
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
