//! `iscp run` exits with status 3 when units failed for good, naming how many and why; an input
//! that cannot load (a model file that is not TorchScript) fails its unit at once, not three
//! times.

use crate::helpers::{rows, run, stderr_of_exit, synthetic_data, WHITE_SEARCH};

/// A setting that imports the model file `model`, then one search of class 0.
fn broken_spec(model: &str) -> String {
    let data = synthetic_data(4, 16, 200, 100);
    let setting =
        format!("[[settings]]\nname = \"imported\"\nkind = \"natural\"\nmodel = \"{model}\"\n");
    format!("name = \"broken\"\n{data}\n{setting}\n{WHITE_SEARCH}")
}

#[test]
fn a_run_whose_units_failed_for_good_exits_3_without_retrying_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("broken.toml");
    let model = dir.path().join("not-a-model.pt");
    std::fs::write(&model, b"not a model").unwrap();
    std::fs::write(&spec, broken_spec(model.to_str().unwrap())).unwrap();
    let results = dir.path().join("results");
    let err = stderr_of_exit(&run(&spec, &results), 3);
    assert!(err.contains("4 unit(s) failed for good"), "{err}");
    assert!(err.contains("not a loadable TorchScript module"), "{err}");
    // One failed attempt in all: the prepare, once; its dependents settle without attempts.
    assert_eq!(rows(&results.join("broken/failures")), 1);
}
