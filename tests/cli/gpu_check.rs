//! `scripts/gpu-check.sh`, the one-run GPU check, on its CPU side: its argument checks, and the
//! whole run (bench on a model it trains, a smoke sweep through `iscp run`) with `--device cpu`.

use super::helpers::{stdout_ok, torch_python};
use std::process::Command;

fn script() -> Command {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-check.sh"))
}

#[test]
fn gpu_check_refuses_bad_arguments() {
    for args in [
        vec!["--bogus"],
        vec!["--device", "tpu:0", "--bin", env!("CARGO_BIN_EXE_iscp")],
        vec!["--bin", "/nonexistent/iscp"],
    ] {
        let out = script().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("gpu-check:"), "{args:?}: {err}");
    }
}

#[test]
fn gpu_check_runs_end_to_end_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = script()
        .args([
            "--device",
            "cpu",
            "--quick",
            "--bin",
            env!("CARGO_BIN_EXE_iscp"),
        ])
        .args(["--python", &torch_python()])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    for line in [
        "fp32 per search: one by one",
        "end to end (iscp run, fp32):",
        "searches: 30 parts",
        "patterns: 10 parts",
        "== population audit",
        "  combined                 all ",
        "== gpu-check finished",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    // bf16 is compared with fp32 where the CPU has its instructions, and only there.
    let bf16 = iscp_engine::amp::bf16_supported();
    for line in [
        "bf16, batched:",
        "end to end (iscp run, bf16):",
        "bf16 against fp32:",
    ] {
        assert_eq!(
            text.contains(line),
            bf16,
            "`{line}` (bf16 CPU: {bf16}) in:\n{text}"
        );
    }
}
