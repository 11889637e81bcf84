//! libgomp's wait policy: passive (threads sleep at a barrier) unless the user chose one, so that
//! libtorch's threads do not spin against another process's on a shared machine.
//!
//! libtorch's CPU parallel regions run on GNU OpenMP, whose idle threads spin for a while before
//! they sleep. Beside another spinning process on the same cores (a second worker, another user's
//! PyTorch job on a shared node) each side's threads burn their time slices waiting for a peer
//! that is not scheduled. Measured on a 2-core AMD EPYC beside a 2-thread PyTorch loop, `iscp plan`
//! of `experiments/audit-population.toml` timed training 13 h 11 min with libgomp's default and
//! 2 h 07 min with `OMP_WAIT_POLICY=PASSIVE` (48 min on the idle machine: the passive figure is the
//! fair share of two cores between two processes); `make run`'s spec on the idle machine took
//! 166.8 s with the default and 173.5 s passive, one after the other.
//!
//! libgomp reads its environment when it is loaded, before `main`, so the policy is set by running
//! the binary again with it (`exec`: same process id, arguments and descriptors), once, for the
//! commands that compute. A user's own `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` is left alone.

/// Set in the environment of the process this module re-executed, so that children that should see
/// the user's own environment (the PyTorch reference of `bench --model`) can be given it back.
pub const SET_BY_ISCP: &str = "ISCP_OMP_WAIT_SET";

/// The user chose libgomp's waiting, or this process already set it.
fn chosen() -> bool {
    ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"]
        .iter()
        .any(|k| std::env::var_os(k).is_some())
}

/// Runs this binary again with `OMP_WAIT_POLICY=PASSIVE` unless a policy is already chosen;
/// returns (and the process goes on spinning) only where that is impossible. Call before any
/// thread starts and before libtorch runs anything.
pub fn passive_or_reexec() {
    if chosen() {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| "iscp".into());
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(arg0)
            .args(args)
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .env(SET_BY_ISCP, "1")
            .exec();
        tracing::debug!("could not re-run with OMP_WAIT_POLICY=PASSIVE ({err}); threads spin");
    }
}

/// Gives `cmd` the environment the user started `iscp` with, as far as this module changed it.
pub fn user_environment(cmd: &mut std::process::Command) {
    if std::env::var_os(SET_BY_ISCP).is_some() {
        cmd.env_remove("OMP_WAIT_POLICY").env_remove(SET_BY_ISCP);
    }
}
