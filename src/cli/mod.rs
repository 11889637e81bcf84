//! Command-line arguments (clap) and dispatch to the subcommands.

mod bench;
mod plan;
mod run;
mod scan;

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
    /// Audit one model for backdoors: per class, a white- and a positive-canvas search, the small
    /// pattern's predictive power, and classes flagged by median absolute deviation.
    Scan(scan::ScanArgs),
    /// Measure seconds per search for the small CNN on this machine, one by one and batched
    /// (a benchmark, not a test).
    Bench(bench::BenchArgs),
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
    }
}
