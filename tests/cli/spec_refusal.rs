//! The binary refuses a bad spec before any work, naming the key and line, and writes nothing.

use crate::helpers::{iscp, tiny_spec};

#[test]
fn bad_spec_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    let results = dir.path().join("results");
    std::fs::write(
        &spec,
        tiny_spec("", "[0.2]").replace("sizes = [0.02, 0.1]", "sizes = [0.0, 0.1]"),
    )
    .unwrap();
    let out = iscp(&[
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml:20: `search.sizes`: size 0 is impossible"),
        "{err}"
    );
    assert!(!results.exists(), "a refused spec wrote results");

    std::fs::write(&spec, tiny_spec("classes = [0, 5]", "[0.2]")).unwrap();
    let out = iscp(&[
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(":21: `search.classes`: class 5 does not exist"),
        "{err}"
    );
    assert!(!results.exists(), "a refused spec wrote results");
}

#[test]
fn help_explains_the_commands() {
    let out = iscp(&["run", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in ["--results", "--device", "--threads", "--quiet"] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}
