//! The binary refuses a bad spec before any work, naming the key and line, and writes nothing.

use crate::helpers::{iscp, run_with, spec_in_temp, tiny_spec};

/// Runs a spec that must be refused; returns stderr after checking nothing was written.
fn refused(text: &str) -> String {
    let (_dir, spec, results) = spec_in_temp("bad.toml", text);
    let out = run_with(&spec, &results, &["--quiet"]);
    assert!(!out.status.success());
    assert!(!results.exists(), "a refused spec wrote results");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_spec_is_refused_before_any_work() {
    let err = refused(&tiny_spec("", "[0.2]").replace("sizes = [0.02, 0.1]", "sizes = [0.0, 0.1]"));
    assert!(
        err.contains("bad.toml:20: `search.sizes`: size 0 is impossible"),
        "{err}"
    );
    let err = refused(&tiny_spec("classes = [0, 5]", "[0.2]"));
    assert!(
        err.contains("bad.toml:21: `search.classes`: class 5 does not exist"),
        "{err}"
    );
    let err = refused(&tiny_spec("", "[0.2]").replace("[search]", "[search]\nsizez = [0.1]"));
    assert!(err.contains("bad.toml:17: `sizez`: unknown field"), "{err}");
}

#[test]
fn help_explains_the_commands() {
    for (command, flags) in [
        (
            "run",
            &["--results", "--device", "--threads", "--quiet"][..],
        ),
        (
            "scan",
            &[
                "--model",
                "--data",
                "--data-kind",
                "--size",
                "--mean",
                "--std",
                "--name",
            ][..],
        ),
        (
            "bench",
            &["--data", "--canvases", "--device", "--threads"][..],
        ),
    ] {
        let out = iscp(&[command, "--help"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        for flag in flags {
            assert!(
                text.contains(flag),
                "{command} {flag} missing from:\n{text}"
            );
        }
    }
}
