//! Running the binary and reading its tables.

use iscp_sweep::tables::{done_units, read_batches};
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn iscp(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args(args)
        .output()
        .expect("iscp runs")
}

/// Runs `iscp run SPEC --results DIR --quiet --threads 2`.
pub fn run(spec: &Path, results: &Path) -> Output {
    iscp(&[
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
        "--threads",
        "2",
    ])
}

/// `run`, asserting it succeeded; returns its stderr.
pub fn run_ok(spec: &Path, results: &Path) -> String {
    let out = run(spec, results);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "iscp run failed:\n{err}");
    err
}

/// The python of the torch virtual environment `make test` sets up (`ISCP_TORCH_VENV`).
pub fn torch_python() -> String {
    std::env::var("ISCP_TORCH_VENV")
        .map(|v| format!("{v}/bin/python3"))
        .unwrap_or_else(|_| "python3".into())
}

/// A finished command's stdout, asserting it succeeded (stdout and stderr shown when not).
pub fn stdout_ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Writes the Python fixture's TorchScript classifier (1×16×16 inputs, 3 classes) to `out`;
/// `mode` is `normal`, `nan` (every logit NaN) or `constant` (always class 0).
pub fn torchscript_fixture(out: &Path, mode: &str) {
    let python = torch_python();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/make_torchscript.py"
    );
    let done = std::process::Command::new(python)
        .arg(fixture)
        .arg(out)
        .arg(mode)
        .output()
        .expect("python3 runs");
    assert!(
        done.status.success(),
        "fixture failed (run through `make test`, which sets ISCP_TORCH_VENV): {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// Number of rows over all parts of a table.
pub fn rows(table: &Path) -> usize {
    parts(table)
        .iter()
        .map(|p| {
            read_batches(p)
                .unwrap()
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
        })
        .sum()
}

pub fn parts(table: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = done_units(table)
        .unwrap()
        .iter()
        .map(|n| table.join(format!("part-{n}.parquet")))
        .collect();
    v.sort();
    v
}

/// A small synthetic spec: 3 classes of 16×16 shapes, a quick natural model.
pub fn tiny_spec(extra_search: &str, alphas: &str) -> String {
    format!(
        r#"name = "tiny"
seed = 1

[data]
kind = "synthetic"
classes = 3
size = 16
train = 600
test = 240

[[settings]]
name = "natural"
kind = "natural"
train = {{ epochs = 1, batch = 32, lr = 0.05 }}

[search]
canvases = [{{ kind = "positive", n = 2 }}, {{ kind = "white" }}]
alphas = {alphas}
epochs = 1
sizes = [0.02, 0.1]
{extra_search}
"#
    )
}

/// `tiny_spec`'s canvases cut to the white one (for models whose positive canvases are not
/// guaranteed: no class signal, or trained on derived data).
pub fn white_canvases_only(spec: &str) -> String {
    spec.replace(
        "canvases = [{ kind = \"positive\", n = 2 }, { kind = \"white\" }]",
        "canvases = [{ kind = \"white\" }]",
    )
}
