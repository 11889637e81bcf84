//! libgomp's waiting: a short spin (`GOMP_SPINCOUNT=10000`) unless the user chose, so that
//! libtorch's idle threads soon sleep instead of spinning against another process's on a shared
//! machine, while back-to-back small operations still find them awake.
//!
//! libtorch's CPU parallel regions run on GNU OpenMP, whose idle threads spin 300,000 times by
//! default before they sleep. Beside another spinning process on the same cores (a second worker,
//! another user's PyTorch job on a shared node) each side's threads burn their time slices waiting
//! for a peer that is not scheduled. `iscp plan experiments/audit-population.toml` on a 2-core AMD
//! EPYC beside a 2-thread PyTorch loop timed training at 640 h 31 min and 13 h 11 min with the
//! default, 1 h 28 min with a spin of 10,000 and 2 h 07 min passive (`OMP_WAIT_POLICY=PASSIVE`),
//! against 40–49 min idle. Passive waiting made a search run alone (a few dozen small operations a
//! step on 2 threads) 1.8× slower (5.57 against 3.08 s); the short spin did not (2.34 s).
//!
//! libgomp reads its environment when it is loaded, before `main`, so the setting is made by
//! running the binary again with it (`exec`: same process id, arguments and descriptors), once,
//! for the commands that compute. A user's own `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` is left alone.

/// The spin count set: iterations an idle libgomp thread polls before it sleeps.
pub const SPIN_COUNT: &str = "10000";

/// Set in the environment of the process this module re-executed, so that children that should see
/// the user's own environment (the PyTorch reference of `bench --model`) can be given it back.
pub const SET_BY_ISCP: &str = "ISCP_OMP_WAIT_SET";

/// The user chose libgomp's waiting, or this process already set it.
fn chosen() -> bool {
    ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"]
        .iter()
        .any(|k| std::env::var_os(k).is_some())
}

/// Whether libgomp's idle threads may spin long here: the user chose its waiting (other than
/// passive) rather than this module.
pub fn may_spin_long() -> bool {
    std::env::var_os(SET_BY_ISCP).is_none()
        && (std::env::var("OMP_WAIT_POLICY").is_ok_and(|p| !p.eq_ignore_ascii_case("passive"))
            || std::env::var_os("GOMP_SPINCOUNT").is_some())
}

/// Runs this binary again with `GOMP_SPINCOUNT` at [`SPIN_COUNT`] unless the user chose how libgomp
/// waits; returns (and the process goes on with libgomp's default) only where that is impossible.
/// Call before any thread starts and before libtorch runs anything.
pub fn short_spin_or_reexec() {
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
            .env("GOMP_SPINCOUNT", SPIN_COUNT)
            .env(SET_BY_ISCP, "1")
            .exec();
        tracing::debug!("could not re-run with GOMP_SPINCOUNT={SPIN_COUNT} ({err}); default spin");
    }
}

/// Gives `cmd` the environment the user started `iscp` with, as far as this module changed it.
pub fn user_environment(cmd: &mut std::process::Command) {
    if std::env::var_os(SET_BY_ISCP).is_some() {
        cmd.env_remove("GOMP_SPINCOUNT").env_remove(SET_BY_ISCP);
    }
}
