//! `iscp bench --model` on a TorchScript model the reference script trains on synthetic IDX data:
//! both sides of the comparison run end to end and print their figures; the batched and one by
//! one masks select the same pixels.

use super::helpers::{assert_success, stdout_ok, torch_python};
use std::path::Path;
use std::process::Command;

fn reference(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/reference_search.py");
    let out = Command::new(torch_python())
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    let what = format!("reference_search.py {args:?} failed (make test sets ISCP_TORCH_VENV)");
    assert_success(&out, &what);
}

/// The first number after `label` on the line that holds it.
fn figure(text: &str, label: &str) -> f64 {
    let rest = text
        .split(label)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{label}` in:\n{text}"));
    rest.trim_start_matches(|c: char| !c.is_ascii_digit())
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{label}` in:\n{text}"))
}

/// Writes synthetic IDX data and a model trained on it by the reference script.
pub fn synthetic_model(dir: &Path) -> (String, String) {
    let data = dir.join("data");
    let model = dir.join("model.pt");
    let (d, m) = (data.to_str().unwrap(), model.to_str().unwrap());
    reference(&["synth", "--out", d, "--train", "1000", "--test", "200"]);
    reference(&["train", "--data", d, "--out", m, "--epochs", "8"]);
    (d.to_string(), m.to_string())
}

#[test]
fn bench_model_times_both_sides_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = synthetic_model(dir.path());
    let python = torch_python();
    let out = Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args([
            "bench",
            "--model",
            &model,
            "--data",
            &data,
            "--threads",
            "2",
            "--canvases",
            "2",
        ])
        .args(["--reference-python", &python])
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    assert!(text.contains("10 classes"), "{text}");
    // The masks of a batch select the pixels the masks searched alone select (not asserted bit for
    // bit: other CPUs round batches of other shapes differently, and the signed step can turn a
    // rounding difference into a moved mask value).
    assert!(figure(&text, "lowest top-1% Jaccard") >= 0.8, "{text}");
    // In process: the top two positive canvases of each class, their mean PW per size compared
    // search by search (one by one against batched, with the difference's standard error).
    let paired = text
        .lines()
        .find(|l| l.contains("fp32 mean PW at 1/2/3/5/10% over"))
        .unwrap_or_else(|| panic!("no paired PW line in:\n{text}"));
    assert!(paired.contains("over 20 searches"), "{paired}");
    assert_eq!(paired.matches(" ± ").count(), 5, "{paired}");
    for label in [
        "fp32 per search: one by one",
        "batched (20 at once)",
        "end to end (iscp run, fp32):",
        "PyTorch reference (one search at a time):",
        "speed-up over the reference, fp32: end to end",
        "x, per search",
    ] {
        assert!(figure(&text, label) > 0.0, "{label}: {text}");
    }
}

#[test]
fn bench_model_refuses_a_missing_model_and_a_reference_without_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args([
            "bench",
            "--model",
            "/nonexistent/m.pt",
            "--data",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args(["bench", "--reference-python", "python3"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap refuses --reference-python alone"
    );
}
