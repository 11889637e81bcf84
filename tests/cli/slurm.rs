//! The project's Slurm scripts on a real single-node Slurm (`scripts/setup-slurm.sh`: Debian's
//! slurm-wlm and munge, daemons started for the test and stopped after it): the coordinator
//! submitted with `deploy/slurm/coordinator.sbatch` (found through its address file), two CPU
//! workers with `deploy/slurm/workers.sbatch` as an array, the token read from a 0600 file, the
//! smoke spec to the end with one worker `scancel`led mid-sweep: every unit exactly once and no
//! failure row (the cancelled worker handed its units back).

use crate::cluster::{assert_smoke_once, done_of, Cluster};
use crate::helpers::stdout_of_success;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A single-node Slurm whose daemons stop when this is dropped.
struct Slurm {
    dir: PathBuf,
    conf: String,
}

impl Slurm {
    fn start(dir: &Path) -> Slurm {
        // Ports of our own, so that a Slurm left running elsewhere does not answer for us.
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
                .to_string()
        };
        let out = Command::new(format!("{ROOT}/scripts/setup-slurm.sh"))
            .args(["start", dir.to_str().unwrap()])
            .env("ISCP_SLURMCTLD_PORT", port())
            .env("ISCP_SLURMD_PORT", port())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "Slurm could not start here (scripts/setup-slurm.sh needs root and apt): {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .expect("the setup prints SLURM_CONF")
            .to_string();
        Slurm {
            dir: dir.to_path_buf(),
            conf,
        }
    }

    fn cmd(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        stdout_of_success(&out, &format!("{program} {args:?}: "))
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new(format!("{ROOT}/scripts/setup-slurm.sh"))
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

#[test]
fn sbatch_workers_run_the_smoke_spec_and_a_cancelled_one_hands_its_units_back() {
    let mut c = Cluster::new();
    let slurm = Slurm::start(&c.path("slurm"));
    let token = c.path("token");
    std::fs::write(&token, "slurm-test-token\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    c.admin_args = vec![format!("--token-file={}", token.display())];
    let home = c.dir.path().to_str().unwrap().to_string();
    let exports = format!(
        "--export=ALL,ISCP_HOME={home},ISCP_BIN={},ISCP_PORT=0,ISCP_DEVICES=cpu,ISCP_GRACE_S=3,ISCP_LOG=info",
        env!("CARGO_BIN_EXE_iscp")
    );
    let coordinator = slurm.cmd(
        "sbatch",
        &[
            "--parsable",
            "--mem=1G",
            "--cpus-per-task=1",
            &format!("--chdir={home}"),
            &exports,
            &format!("{ROOT}/deploy/slurm/coordinator.sbatch"),
        ],
    );
    let address = c.path("state/coordinator.address");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !address.exists() {
        assert!(
            Instant::now() < deadline,
            "the coordinator job wrote no address: {}",
            slurm.cmd("squeue", &[])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.url = std::fs::read_to_string(&address)
        .unwrap()
        .trim()
        .to_string();

    let job = slurm.cmd(
        "sbatch",
        &[
            "--parsable",
            "--array=0-1",
            "--gres=none",
            "--mem=1G",
            "--cpus-per-task=1",
            &format!("--chdir={home}"),
            &exports,
            &format!("{ROOT}/deploy/slurm/workers.sbatch"),
        ],
    );
    let job = job.trim().split(';').next().unwrap().to_string();
    let spec = std::fs::read_to_string(format!("{ROOT}/experiments/smoke.toml")).unwrap();
    c.submit("smoke", &spec);
    // Both array tasks registered and the sweep under way: cancel task 1.
    c.wait_for("both Slurm workers to work", 180, |s| {
        s.matches("worker iscp-worker-").count() == 2 && done_of(s, "search") >= 10
    });
    slurm.cmd("scancel", &[&format!("{job}_1")]);
    let log = c.path(&format!("iscp-worker-{job}_1.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // The worker's last line when it stopped by itself (a SIGKILL leaves none):
        // "N units completed, M failed, K handed back".
        if text.contains(" handed back") && text.contains("units completed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cancelled worker did not stop cleanly:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = c.wait_for("the smoke sweep to finish", 300, |s| {
        s.contains("(finished)")
    });
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    // The cancelled worker's units came back handed back, not as failures.
    assert_smoke_once(&c.results("smoke"));
    // The coordinator's job stops cleanly at SIGTERM (a preemption, the time limit) and takes
    // its address with it.
    slurm.cmd("scancel", &[&job, coordinator.trim()]);
    let log = c.path(&format!("iscp-coordinator-{}.log", coordinator.trim()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("coordinator stopped")
    {
        assert!(
            Instant::now() < deadline,
            "the coordinator did not stop cleanly:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!address.exists(), "a stopped coordinator left its address");
}
