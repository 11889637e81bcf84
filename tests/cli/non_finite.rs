//! Non-finite outputs are errors, not results: a TorchScript model whose logits are NaN fails its
//! unit once (input errors are not retried) with a message naming the model, and no table gets a
//! NaN row; `iscp scan` refuses it, and refuses a chance-level model instead of flagging classes.

use crate::helpers::{
    rows, run, run_scan, stderr_of_exit, torchscript_in_temp, write_in, WHITE_SEARCH,
};

const DATA: &str = "[data]\nkind = \"synthetic\"\nclasses = 3\nsize = 16\ntrain = 60\ntest = 90\n";

#[test]
fn a_nan_model_fails_its_unit_once_and_writes_nothing() {
    let (dir, model) = torchscript_in_temp("nan.pt", "nan");
    let text = format!(
        "name = \"nan\"\n{DATA}\n[[settings]]\nname = \"broken\"\nkind = \"natural\"\nmodel = \"{}\"\n\n{WHITE_SEARCH}",
        model.display()
    );
    let spec = write_in(dir.path(), "nan.toml", &text);
    let results = dir.path().join("r");
    let err = stderr_of_exit(&run(&spec, &results), 3);
    assert!(err.contains("not finite"), "{err}");
    assert!(
        err.contains(&format!(
            "the model {} of setting `broken`",
            model.display()
        )),
        "{err}"
    );
    assert!(err.contains("NaN"), "{err}");
    let root = results.join("nan");
    assert_eq!(rows(&root.join("failures")), 1, "retried: {err}");
    for table in ["models", "searches", "patterns"] {
        assert_eq!(rows(&root.join(table)), 0, "{table}");
    }
}

/// `iscp scan` on `mode`'s fixture: its exit status, stderr, and whether a scan part appeared.
fn scan(mode: &str) -> (Option<i32>, String, bool) {
    let (dir, model) = torchscript_in_temp(&format!("{mode}.pt"), mode);
    let data = write_in(dir.path(), "data.toml", DATA);
    let results = dir.path().join("r");
    let out = run_scan(&model, &data, &results);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let wrote = results.join("scan/scan").exists() || results.join("scan/images").exists();
    (out.status.code(), err, wrote)
}

#[test]
fn scan_refuses_a_nan_model() {
    let (code, err, wrote) = scan("nan");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("refusing to scan") && err.contains("nan.pt"),
        "{err}"
    );
    assert!(err.contains("not finite") && err.contains("NaN"), "{err}");
    assert!(!err.contains("backdoored"), "{err}");
    assert!(!wrote);
}

#[test]
fn scan_says_a_chance_level_model_cannot_be_audited() {
    let (code, err, wrote) = scan("constant");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot be audited"), "{err}");
    assert!(err.contains("clean accuracy 0.333"), "{err}");
    assert!(!wrote);
}
