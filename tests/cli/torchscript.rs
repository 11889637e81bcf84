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
