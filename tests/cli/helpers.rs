//! Running the binary and reading its tables.

use arrow_array::cast::AsArray;
use iscp_sweep::tables::{done_units, read_batches};
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn iscp(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args(args)
        .output()
        .expect("iscp runs")
}

/// The words of `iscp run SPEC --results DIR`, without the program.
pub fn run_words<'a>(spec: &'a Path, results: &'a Path) -> Vec<&'a str> {
    let (spec, results) = (spec.to_str().unwrap(), results.to_str().unwrap());
    vec!["run", spec, "--results", results]
}

/// Runs `iscp run SPEC --results DIR` followed by `options`.
pub fn run_with(spec: &Path, results: &Path, options: &[&str]) -> Output {
    let mut args = run_words(spec, results);
    args.extend_from_slice(options);
    iscp(&args)
}

/// Runs `iscp run SPEC --results DIR --quiet --threads 2`.
pub fn run(spec: &Path, results: &Path) -> Output {
    run_with(spec, results, &["--quiet", "--threads", "2"])
}

/// A temporary folder holding the spec `file` written with `text`; the folder, the spec's path
/// and the path of a results folder in it (`results`, not made).
pub fn spec_in_temp(file: &str, text: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_in(dir.path(), file, text);
    let results = dir.path().join("results");
    (dir, spec, results)
}

/// Writes `text` to the file `file` in `dir`; its path.
pub fn write_in(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Asserts that a finished command succeeded; when not, says `what` failed and shows its stderr.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `error` of the first row of the first part of the `failures` table `failures`.
pub fn first_error(failures: &Path) -> String {
    let batch = &read_batches(&parts(failures)[0]).unwrap()[0];
    batch
        .column_by_name("error")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string()
}

/// Runs `iscp scan --model MODEL --data DATA --results DIR`.
pub fn run_scan(model: &Path, data: &Path, results: &Path) -> Output {
    let (model, data) = (model.to_str().unwrap(), data.to_str().unwrap());
    let results = results.to_str().unwrap();
    iscp(&[
        "scan",
        "--model",
        model,
        "--data",
        data,
        "--results",
        results,
    ])
}

/// A finished command's stderr, asserting it exited with `code` (stderr shown when not).
pub fn stderr_of_exit(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "{err}");
    err
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
    stdout_of_success(out, "")
}

/// `stdout_ok`, its failure message starting with `what`.
pub fn stdout_of_success(out: &Output, what: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what}{text}\n{}",
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
    let what = "fixture failed (run through `make test`, which sets ISCP_TORCH_VENV)";
    assert_success(&done, what);
}

/// A temporary folder holding the Python fixture's TorchScript classifier of `mode` (see
/// `torchscript_fixture`) as `file`; the folder and the model's path.
pub fn torchscript_in_temp(file: &str, mode: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join(file);
    torchscript_fixture(&model, mode);
    (dir, model)
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

/// A synthetic `[data]` table: `classes` classes of `size`×`size` shapes, `train` and `test` images.
pub fn synthetic_data(classes: usize, size: usize, train: usize, test: usize) -> String {
    format!("[data]\nkind = \"synthetic\"\nclasses = {classes}\nsize = {size}\ntrain = {train}\ntest = {test}\n")
}

/// A natural setting named `natural`, trained with `train` (an inline TOML table).
pub fn natural_setting(train: &str) -> String {
    format!("[[settings]]\nname = \"natural\"\nkind = \"natural\"\ntrain = {train}\n")
}

/// A `[search]` table: class 0 on a white canvas, α 0.2, one epoch, size 0.05.
pub const WHITE_SEARCH: &str = "[search]\nclasses = [0]\ncanvases = [{ kind = \"white\" }]\nalphas = [0.2]\nepochs = 1\nsizes = [0.05]\n";

/// `tiny_spec`'s canvases cut to the white one (for models whose positive canvases are not
/// guaranteed: no class signal, or trained on derived data).
pub fn white_canvases_only(spec: &str) -> String {
    spec.replace(
        "canvases = [{ kind = \"positive\", n = 2 }, { kind = \"white\" }]",
        "canvases = [{ kind = \"white\" }]",
    )
}
