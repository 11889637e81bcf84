//! A unit that aborts its process (here a training set too large to allocate under a memory cap:
//! Rust's allocator aborts) is recorded as a crash of that unit: each rerun counts one failed
//! attempt, and after `--max-attempts` (3) the run ends with exit 3 naming the crash, instead of
//! every run dying the same way with nothing on record. A device this machine lacks ends the run
//! at once with exit 1.

use crate::helpers::{rows, run_with, spec_in_temp, stderr_of_exit, tiny_spec};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// 400 + 40 images of 3×1024×1024: 5 GB of pixels, refused by nothing at submit (the limit is
/// what a worker may hold), and unallocatable under a 4 GiB address-space cap.
const TOO_BIG: &str = r#"name = "big"
seed = 1

[data]
kind = "synthetic"
classes = 3
size = 1024
channels = 3
train = 400
test = 40

[[settings]]
name = "natural"
kind = "natural"
train = { epochs = 1 }

[search]
canvases = [{ kind = "white" }]
alphas = [0.2]
epochs = 1
sizes = [0.02, 0.1]
"#;

#[test]
fn a_unit_that_crashes_its_process_fails_for_good_with_the_crash_as_reason() {
    let (_dir, spec, results) = spec_in_temp("big.toml", TOO_BIG);
    let run = || {
        Command::new("timeout")
            .args(["-s", "KILL", "120", "prlimit", "--as=4294967296", "--"])
            .arg(env!("CARGO_BIN_EXE_iscp"))
            .args(["run", spec.to_str().unwrap(), "--quiet", "--threads", "1"])
            .arg("--results")
            .arg(&results)
            .output()
            .unwrap()
    };
    for i in 1..=3 {
        let out = run();
        let err = String::from_utf8_lossy(&out.stderr);
        // `timeout` reports its child's death by a signal as 128 + the signal.
        let aborted = out.status.signal() == Some(6) || out.status.code() == Some(134);
        assert!(aborted, "run {i} did not abort: {:?}\n{err}", out.status);
    }
    let err = stderr_of_exit(&run(), 3);
    assert!(
        err.contains("prepare-model") && err.contains("crashed"),
        "{err}"
    );
    assert!(
        err.lines().all(|l| l.len() < 4_000),
        "a reason too long to read:\n{err}"
    );
    // The three crashes are its three attempts, each a row of `failures`.
    assert_eq!(rows(&results.join("big/failures")), 3);
}

#[test]
fn a_device_this_machine_lacks_ends_the_run_at_once() {
    let (_dir, spec, results) = spec_in_temp("tiny.toml", &tiny_spec("", "[0.2]"));
    let started = std::time::Instant::now();
    let out = run_with(&spec, &results, &["--quiet", "--device", "cuda:99"]);
    let err = stderr_of_exit(&out, 1);
    assert!(err.contains("cuda:99"), "{err}");
    assert!(started.elapsed().as_secs() < 60);
    assert!(!results.exists(), "a run on a missing device wrote results");
}
