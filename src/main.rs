//! `iscp`: the one binary. Subcommands are thin: they parse arguments and call the libraries.

mod cli;
mod malloc;
mod omp_wait;

use clap::Parser;

fn main() {
    malloc::tune();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISCP_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = cli::Cli::parse();
    if args.command.computes() {
        omp_wait::short_spin_or_reexec();
    }
    if let Err(e) = cli::dispatch(args) {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        let units_failed = e.downcast_ref::<cli::run::UnitsFailed>().is_some();
        std::process::exit(if units_failed {
            cli::run::EXIT_UNITS_FAILED
        } else {
            1
        });
    }
}
