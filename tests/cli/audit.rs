//! `iscp audit DIR`: a folder of TorchScript models audited with no spec to write (both detectors
//! on each model exactly once, a verdict per model with the manifest's truth beside it), and run
//! again it resumes: nothing runs twice.

use crate::helpers::{iscp, rows, stdout_of_success, torchscript_fixture, write_in};
use iscp_sweep::tables::read_detection_rows;
use std::collections::HashSet;

#[test]
fn a_folder_of_models_is_audited_with_no_spec_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    // The fixture's 1×16×16, 3-class classifier: untrained, and one that ignores its input.
    torchscript_fixture(&models.join("a.pt"), "normal");
    torchscript_fixture(&models.join("b.pt"), "constant");
    let manifest = write_in(
        dir.path(),
        "truth.csv",
        "file,poisoned,target,trigger_row,trigger_col,trigger_size\na.pt,false,,,,\nb.pt,true,0,,,\n",
    );
    let data = write_in(
        dir.path(),
        "data.toml",
        "[data]\nkind = \"synthetic\"\nclasses = 3\nsize = 16\nchannels = 1\ntrain = 300\ntest = 300\n",
    );
    let results = dir.path().join("results");
    let words = [
        "audit",
        models.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        // Untrained models are sure of no class's image: white canvases only.
        "--canvases",
        "white",
        "--results",
        results.to_str().unwrap(),
        "--quiet",
        "--threads",
        "2",
    ];
    let first = iscp(&words);
    let out = stdout_of_success(&first, "iscp audit: ");
    let log = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(
        log.contains("audit (") && log.contains("neural-cleanse"),
        "{log}"
    );
    let root = results.join("audit-models");
    assert!(root.join("audit.toml").is_file(), "the spec it ran is kept");
    assert_eq!(
        rows(&root.join("detection")),
        18,
        "four detectors, their per-class readings and the combined verdict × two models"
    );
    let det = read_detection_rows(&root.join("detection")).unwrap();
    let named: HashSet<&str> = det.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(named, HashSet::from(["given-a", "given-b"]));
    // The verdict table: a line per model, its truth from the manifest.
    let line = |m: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(m))
            .unwrap_or_else(|| panic!("no line for {m} in\n{out}"))
            .to_string()
    };
    assert!(out.lines().any(|l| l.starts_with("model ")), "{out}");
    // The rule the verdict follows is printed with it.
    assert!(out.contains("z >= 6"), "{out}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|l| l.ends_with("report.html")),
        "{out}"
    );
    assert!(line("a").ends_with("clean"), "{out}");
    assert!(line("b").ends_with("poisoned (0)"), "{out}");

    // Run again: the same spec, every unit already done, the same verdicts.
    let again = iscp(&words);
    let err = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(again.status.success(), "{err}");
    assert!(err.contains(" 0 ran, 0 failed"), "{err}");
    assert_eq!(rows(&root.join("detection")), 18);
    assert_eq!(String::from_utf8_lossy(&again.stdout), out);
}
