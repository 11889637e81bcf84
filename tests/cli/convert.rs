//! `scripts/convert_model.py`: its fixture (a seeded small CNN, its state dict, the pickled module
//! and a check file made with mean 0.5, std 0.25) converts with the right normalisation from both
//! the state dict and the module; with a wrong one the check fails with exit code 1, names the
//! normalisation and leaves no output file behind.

use super::helpers::torch_python;
use std::path::Path;
use std::process::{Command, Output};

fn convert_model(args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/convert_model.py");
    Command::new(torch_python())
        .arg(script)
        .args(args)
        .output()
        .expect("python runs")
}

fn texts(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes the fixture in `dir` (asserting the script succeeded).
fn fixture(dir: &Path) {
    let made = convert_model(&["fixture", "--out-dir", dir.to_str().unwrap()]);
    assert!(
        made.status.success(),
        "convert_model.py fixture failed (make test sets ISCP_TORCH_VENV): {}",
        texts(&made)
    );
}

/// `--state-dict STATE --arch ARCH` with the fixture's classes (10) and shape (1×28×28).
fn state_dict<'a>(state: &'a Path, arch: &'a str) -> Vec<&'a str> {
    let state = state.to_str().unwrap();
    vec![
        "--state-dict",
        state,
        "--arch",
        arch,
        "--classes",
        "10",
        "--shape",
        "1,28,28",
    ]
}

/// Runs `convert` on the fixture in `dir` with `source` (`--state-dict ...` or `--module ...`),
/// normalisation `mean`/`std`, the fixture's check file, writing `out`.
fn convert(dir: &Path, source: &[&str], mean: &str, std: &str, out: &Path) -> Output {
    let check = dir.join("check.pt");
    let mut args = vec!["convert"];
    args.extend_from_slice(source);
    args.extend_from_slice(&["--mean", mean, "--std", std]);
    args.extend_from_slice(&["--check", check.to_str().unwrap()]);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    convert_model(&args)
}

#[test]
fn convert_model_checks_the_normalisation_against_the_users_logits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixture(d);
    for f in ["model.state.pt", "model.module.pt", "check.pt"] {
        assert!(d.join(f).is_file(), "the fixture wrote no {f}");
    }
    let state = d.join("model.state.pt");
    let state_args = state_dict(&state, "small-cnn");

    // The normalisation the fixture's logits were made with: written and checked.
    let ok = d.join("ok.pt");
    let out = convert(d, &state_args, "0.5", "0.25", &ok);
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out));
    assert!(ok.is_file(), "no ok.pt: {}", texts(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("max |logit difference|"), "{}", texts(&out));

    // No normalisation: the logits disagree, exit 1, the message says why, no file is left.
    let wrong = d.join("wrong.pt");
    let out = convert(d, &state_args, "0.0", "1.0", &wrong);
    assert_eq!(out.status.code(), Some(1), "{}", texts(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("disagree"), "{}", texts(&out));
    assert!(err.contains("normalisation"), "{}", texts(&out));
    assert!(
        !wrong.exists(),
        "a wrong model was left behind: {}",
        texts(&out)
    );
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // The pickled module with the right normalisation: written and checked.
    let module = d.join("model.module.pt");
    let from_module = d.join("module.pt");
    let out = convert(
        d,
        &["--module", module.to_str().unwrap(), "--trust-code"],
        "0.5",
        "0.25",
        &from_module,
    );
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out));
    assert!(from_module.is_file(), "no module.pt: {}", texts(&out));
}

/// A crafted pickle whose loading writes a marker file: without --trust-code neither `--module`
/// nor `--state-dict` runs it (the first is refused, the second reads data only), and `--import`
/// is refused too; with --trust-code the module is unpickled, as the flag says.
#[test]
fn a_crafted_pickle_runs_no_code_without_trust_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let marker = d.join("pwned");
    let evil = d.join("evil.pt");
    let make = format!(
        "import os, torch\n\
         class Evil:\n    def __reduce__(self):\n        \
         return (os.system, ('touch {}',))\n\
         torch.save({{'w': Evil()}}, {:?})\n",
        marker.display(),
        evil.display().to_string()
    );
    let made = Command::new(torch_python())
        .args(["-c", &make])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", texts(&made));
    assert!(!marker.exists(), "making the pickle ran it");
    let out_file = d.join("out.pt");
    let evil = evil.to_str().unwrap();
    let plain = |source: &[&str]| {
        let mut args = vec!["convert", "--shape", "1,28,28", "--classes", "10"];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--out", out_file.to_str().unwrap()]);
        convert_model(&args)
    };
    let out = plain(&["--module", evil]);
    assert_eq!(out.status.code(), Some(2), "{}", texts(&out));
    assert!(texts(&out).contains("--trust-code"), "{}", texts(&out));
    let out = plain(&["--state-dict", evil, "--arch", "small-cnn"]);
    assert_eq!(out.status.code(), Some(2), "{}", texts(&out));
    let script = d.join("defs.py");
    std::fs::write(
        &script,
        format!("open({:?}, 'w')\n", marker.display().to_string()),
    )
    .unwrap();
    let out = plain(&[
        "--state-dict",
        evil,
        "--arch",
        "small-cnn",
        "--import",
        script.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", texts(&out));
    assert!(
        !marker.exists(),
        "code from a file ran without --trust-code"
    );
    assert!(!out_file.exists());
    // With the flag the user has said the file is theirs: unpickling runs its code.
    let out = plain(&["--module", evil, "--trust-code"]);
    assert_eq!(out.status.code(), Some(2), "{}", texts(&out));
    assert!(marker.exists(), "--trust-code did not unpickle the module");
}

#[test]
fn convert_model_without_a_check_file_warns_that_nothing_was_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fixture(d);
    let out_file = d.join("unchecked.pt");
    let state = d.join("model.state.pt");
    let mut args = vec!["convert"];
    args.extend(state_dict(&state, "small-cnn"));
    args.extend(["--mean", "0.5", "--std", "0.25"]);
    args.extend(["--out", out_file.to_str().unwrap()]);
    let out = convert_model(&args);
    assert_eq!(out.status.code(), Some(0), "{}", texts(&out));
    assert!(out_file.is_file(), "{}", texts(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: nothing was checked"),
        "{}",
        texts(&out)
    );
    // A state dict that does not fit the architecture is refused (exit 2), writing nothing.
    let refused = d.join("refused.pt");
    let mut args = vec!["convert"];
    args.extend(state_dict(&state, "resnet18"));
    args.extend(["--out", refused.to_str().unwrap()]);
    let out = convert_model(&args);
    assert_eq!(out.status.code(), Some(2), "{}", texts(&out));
    assert!(!refused.exists());
}
