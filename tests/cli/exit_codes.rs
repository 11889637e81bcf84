//! `iscp run` exits with status 3 when units failed for good, naming how many and why; an input
//! that cannot load (a model file that is not TorchScript) fails its unit at once, not three
//! times.

use crate::helpers::{rows, run};

const SPEC: &str = r#"name = "broken"
[data]
kind = "synthetic"
classes = 4
size = 16
train = 200
test = 100

[[settings]]
name = "imported"
kind = "natural"
model = "MODEL"

[search]
classes = [0]
canvases = [{ kind = "white" }]
alphas = [0.2]
epochs = 1
sizes = [0.05]
"#;

#[test]
fn a_run_whose_units_failed_for_good_exits_3_without_retrying_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("broken.toml");
    let model = dir.path().join("not-a-model.pt");
    std::fs::write(&model, b"not a model").unwrap();
    std::fs::write(&spec, SPEC.replace("MODEL", model.to_str().unwrap())).unwrap();
    let results = dir.path().join("results");
    let out = run(&spec, &results);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("4 unit(s) failed for good"), "{err}");
    assert!(err.contains("not a loadable TorchScript module"), "{err}");
    // One failed attempt in all: the prepare, once; its dependents settle without attempts.
    assert_eq!(rows(&results.join("broken/failures")), 1);
}
