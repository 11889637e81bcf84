//! The commands that compute run with a short libgomp spin (re-executed once with
//! `GOMP_SPINCOUNT=10000`, same process id), unless the user chose how libgomp waits.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a worker towards a port nothing listens on (it keeps retrying), with `policy` as the
/// user's `OMP_WAIT_POLICY`, and returns its environment as the kernel shows it once it runs.
fn worker_environment(policy: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iscp"));
    cmd.args(["worker", "--coordinator", "http://127.0.0.1:9"])
        .env_remove("OMP_WAIT_POLICY")
        .env_remove("GOMP_SPINCOUNT")
        .env_remove("ISCP_OMP_WAIT_SET")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(p) = policy {
        cmd.env("OMP_WAIT_POLICY", p);
    }
    let mut child = cmd.spawn().unwrap();
    let proc = format!("/proc/{}", child.id());
    let threads = || std::fs::read_dir(format!("{proc}/task")).map_or(0, |d| d.count());
    // Threads appear only once main runs its work, after any exec (which keeps the process id).
    let deadline = Instant::now() + Duration::from_secs(30);
    while threads() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = std::fs::read(format!("{proc}/environ"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    env
}

#[test]
fn a_worker_spins_briefly_unless_the_user_chose() {
    let env = worker_environment(None);
    assert!(env.lines().any(|l| l == "GOMP_SPINCOUNT=10000"), "{env}");
    let env = worker_environment(Some("ACTIVE"));
    assert!(env.lines().any(|l| l == "OMP_WAIT_POLICY=ACTIVE"), "{env}");
    assert!(!env.contains("GOMP_SPINCOUNT"), "{env}");
    assert!(!env.contains("ISCP_OMP_WAIT_SET"), "{env}");
}
