//! Command-line arguments (clap) and dispatch to the subcommands.

mod admin;
mod audit;
mod bench;
mod bench_common;
mod bench_coordinator;
mod bench_estimates;
mod bench_model;
mod bench_resnet;
mod connect;
mod coordinator;
mod data_arg;
mod disk;
mod plan;
pub(crate) mod progress;
mod report;
pub(crate) mod run;
mod scan;
mod secret;
mod watch;
mod worker;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Input-space class-wise pattern (ISCP) sweeps: for every class of an image classifier, search the
/// small set of pixels that makes the model predict that class when pasted onto other images.
/// Backdoored models give their trigger away; natural models show abstract shapes.
#[derive(Debug, Parser)]
#[command(name = "iscp", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a spec in this process: prepare models, search, evaluate, write tables and pictures.
    /// Units already in the results are skipped, so an interrupted run resumes where it stopped.
    Run(run::RunArgs),
    /// Print the units a spec expands into, per setting and kind, and how many are already done.
    Plan(plan::PlanArgs),
    /// Write the HTML report of an experiment's results (models, PW by size, scan verdicts,
    /// plots, pictures, failures): `<DIR>/report.html`, one per experiment under DIR.
    Report(report::ReportArgs),
    /// Audit a folder of TorchScript models for backdoors (ISCP, Neural Cleanse, MM-BD and a
    /// targeted UAP per model, each class read against the other models, a verdict each; with a
    /// ground-truth manifest, each detector's detection quality).
    Audit(audit::AuditArgs),
    /// Audit one model for backdoors: per class, a white- and a positive-canvas search, the small
    /// pattern's predictive power, and classes flagged by median absolute deviation.
    Scan(scan::ScanArgs),
    /// Measure seconds per search for the small CNN on this machine, one by one and batched
    /// (a benchmark, not a test).
    Bench(bench::BenchArgs),
    /// Measure the coordinator alone with `noop` units: durable commits per second with 1 and N
    /// workers on loopback, and the time from submit to the first lease (a benchmark, not a test).
    BenchCoordinator(bench_coordinator::BenchCoordinatorArgs),
    /// Serve sweeps to workers over gRPC: a ledger (SQLite) in --state, results in --results.
    /// Restarted on the same state directory, it resumes every sweep where it stopped.
    Coordinator(coordinator::CoordinatorArgs),
    /// Lease units from a coordinator and run them, one slot per device.
    Worker(worker::WorkerArgs),
    /// Send a spec to a coordinator as a sweep (units already done are kept).
    Submit(admin::SubmitArgs),
    /// Units of each sweep by kind and state, failed units with their reasons, and the workers.
    Status(admin::StatusArgs),
    /// Follow a sweep with progress bars until every unit is done, failed or cancelled.
    Watch(watch::WatchArgs),
    /// Cancel a sweep's pending and running units.
    Cancel(admin::SweepArgs),
    /// Put a sweep's failed units back in the queue with a fresh retry budget.
    RetryFailed(admin::SweepArgs),
}

impl Command {
    /// Whether the command runs libtorch's parallel CPU work (training, searches, evaluation,
    /// timing), so that libgomp's idle threads should spin only briefly (`crate::omp_wait`).
    pub fn computes(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Plan(_)
                | Command::Audit(_)
                | Command::Scan(_)
                | Command::Bench(_)
                | Command::Worker(_)
        )
    }
}

/// Arguments shared by commands that read a spec.
#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// The experiment spec (TOML), e.g. experiments/fashion-mnist.toml.
    pub spec: PathBuf,
    /// Folder under which `<experiment name>/` holds the tables, pictures and model artifacts.
    #[arg(long, default_value = "results", env = "ISCP_RESULTS")]
    pub results: PathBuf,
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Plan(a) => plan::plan(a),
        Command::Bench(a) => bench::bench(a),
        Command::Scan(a) => scan::scan(a),
        Command::Audit(a) => audit::audit(a),
        Command::Report(a) => report::report(a),
        Command::BenchCoordinator(a) => bench_coordinator::bench_coordinator(a),
        Command::Coordinator(a) => coordinator::coordinator(a),
        Command::Worker(a) => worker::worker(a),
        Command::Submit(a) => admin::submit(a),
        Command::Status(a) => admin::status(a),
        Command::Watch(a) => watch::watch(a),
        Command::Cancel(a) => admin::cancel(a),
        Command::RetryFailed(a) => admin::retry_failed(a),
    }
}
