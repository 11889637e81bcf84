//! A TorchScript model written by the Python fixture loads, is searched and evaluated, and its
//! exported feature methods serve Grad-CAM.

use crate::helpers::{parts, rows, run_ok, torchscript_in_temp, write_in};
use iscp_sweep::tables::read_model_rows;
use sha2::{Digest, Sha256};

#[test]
fn torchscript_model_is_searched_and_evaluated() {
    let (dir, model) = torchscript_in_temp("net.pt", "normal");
    let text = format!(
        r#"name = "ts"
[data]
kind = "synthetic"
classes = 3
size = 16
train = 30
test = 120

[[settings]]
name = "scripted"
kind = "natural"
model = "{}"
normalize = {{ mean = [0.2], std = [0.3] }}
gradcam_methods = ["features", "head"]

[search]
canvases = [{{ kind = "random", n = 1 }}, {{ kind = "white" }}]
alphas = [0.2]
objectives = ["released", "paper"]
epochs = 1
sizes = [0.05]

[baselines]
uap_eps = [16]
gradcam = true
"#,
        model.display()
    );
    let spec = write_in(dir.path(), "ts.toml", &text);
    let log = run_ok(&spec, &dir.path().join("r"));
    assert!(log.contains("0 failed"), "{log}");
    let root = dir.path().join("r/ts");
    let m = read_model_rows(&parts(&root.join("models"))[0])
        .unwrap()
        .remove(0);
    assert_eq!(m.source, "imported");
    assert_eq!(m.architecture, "torchscript");
    assert_eq!(
        m.checkpoint_sha256,
        hex::encode(Sha256::digest(std::fs::read(&model).unwrap()))
    );
    assert_eq!(rows(&root.join("searches")), 3 * 2 * 2);
    assert_eq!(rows(&root.join("patterns")), 3 * 2 * 2);
    // Per class: one UAP and Grad-CAM on the random and the white canvas, through the exported methods.
    assert_eq!(rows(&root.join("baselines")), 3 * (1 + 2));
}

#[test]
fn a_run_in_bf16_finishes_and_says_when_the_cpu_runs_fp32() {
    use super::helpers::{spec_in_temp, tiny_spec};
    let spec = format!("{}\n[run]\nprecision = \"bf16\"\n", tiny_spec("", "[0.2]"));
    let (_dir, path, results) = spec_in_temp("tiny-bf16.toml", &spec);
    let out = super::helpers::run(&path, &results);
    super::helpers::assert_success(&out, "a bf16 run");
    let root = results.join("tiny");
    // 3 classes × 3 canvases × 1 alpha searches, one evaluation per class.
    assert_eq!(super::helpers::rows(&root.join("searches")), 9);
    assert!(super::helpers::rows(&root.join("patterns")) > 0);
    let bf16 = iscp_engine::amp::bf16_supported();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.contains("no bf16 instructions"),
        !bf16,
        "bf16 CPU: {bf16}; stderr:\n{err}"
    );
    // fp16 is CUDA's: on a CPU the run says so and runs fp32. The older key name is still read.
    let old = spec.replace("precision = \"bf16\"", "search_precision = \"fp16\"");
    let (_d, path, results) = spec_in_temp("tiny-old.toml", &old);
    let out = super::helpers::run(&path, &results);
    super::helpers::assert_success(&out, "search_precision = fp16");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fp16 autocast needs a CUDA device: running fp32"),
        "{err}"
    );
}
