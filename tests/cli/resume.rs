//! A run writes every table; running again does no work twice; extending the spec runs only the new
//! units; a failing unit lands in `failures` and the run goes on.

use crate::helpers::{
    first_error, parts, rows, run_ok, spec_in_temp, stderr_of_exit, stdout_ok, tiny_spec,
};
use iscp_sweep::tables::{read_pattern_rows, read_search_rows};

#[test]
fn rerun_and_extension_compute_only_missing_units() {
    let (_dir, spec, results) = spec_in_temp("tiny.toml", &tiny_spec("", "[0.2]"));
    let log = run_ok(&spec, &results);
    // 13 units of rows and the setting's pictures.
    assert!(log.contains("0 already done, 14 ran, 0 failed"), "{log}");
    let root = results.join("tiny");
    // 3 classes × (2 positive + white) searches; 3 evaluations × 3 canvases × 2 sizes pattern rows.
    assert_eq!(rows(&root.join("models")), 1);
    assert_eq!(rows(&root.join("searches")), 9);
    assert_eq!(rows(&root.join("patterns")), 18);
    assert!(parts(&root.join("failures")).is_empty());
    for p in parts(&root.join("patterns")) {
        let r = read_pattern_rows(&p).unwrap();
        for size in [0.02, 0.1] {
            assert_eq!(
                r.iter().filter(|x| x.size == size && x.is_best).count(),
                1,
                "one best canvas per size"
            );
            let best = r.iter().find(|x| x.size == size && x.is_best).unwrap();
            assert!(r
                .iter()
                .filter(|x| x.size == size)
                .all(|x| x.selection_loss >= best.selection_loss));
        }
        assert!(r.iter().all(|x| x.k == if x.size == 0.02 { 5 } else { 26 }));
    }
    for p in parts(&root.join("searches")) {
        let s = &read_search_rows(&p).unwrap()[0];
        assert_eq!(s.mask.len(), 256);
        assert!(s.mask.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(s.canvas_index == -1, s.canvas_kind == "white");
    }
    assert!(root
        .join("images/natural-alpha0p2-released-base-best.png")
        .exists());
    assert!(root
        .join("images/natural-alpha0p2-released-base-white.png")
        .exists());

    let before: Vec<_> = parts(&root.join("searches"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    let log = run_ok(&spec, &results);
    assert!(log.contains("14 already done, 0 ran"), "{log}");
    let after: Vec<_> = parts(&root.join("searches"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after, "a rerun rewrote finished searches");

    std::fs::write(&spec, tiny_spec("", "[0.2, 0.3]")).unwrap();
    let log = run_ok(&spec, &results);
    // The pictures read the new evaluations too: a new pictures unit (13 = 12 + 1).
    assert!(log.contains("13 already done, 13 ran, 0 failed"), "{log}");
    assert_eq!(rows(&root.join("searches")), 18);
    assert_eq!(rows(&root.join("patterns")), 36);
    assert_eq!(rows(&root.join("models")), 1, "the model was prepared once");
}

#[test]
fn a_results_folder_copied_or_moved_elsewhere_resumes_with_every_part() {
    let (dir, spec, results) = spec_in_temp("tiny.toml", &tiny_spec("", "[0.2]"));
    run_ok(&spec, &results);
    let counts =
        |root: &std::path::Path| ["models", "searches", "patterns"].map(|t| rows(&root.join(t)));
    let before = counts(&results.join("tiny"));
    // Copied (the original still there, its ledger naming the original's parts), then moved.
    let copied = dir.path().join("copied");
    copy_tree(&results, &copied);
    let log = run_ok(&spec, &copied);
    assert!(log.contains("14 already done, 0 ran"), "{log}");
    assert_eq!(counts(&copied.join("tiny")), before, "the copy lost parts");
    let moved = dir.path().join("moved");
    std::fs::rename(&copied, &moved).unwrap();
    let log = run_ok(&spec, &moved);
    assert!(log.contains("14 already done, 0 ran"), "{log}");
    assert_eq!(counts(&moved.join("tiny")), before, "the move lost parts");
    assert_eq!(counts(&results.join("tiny")), before);
    // New units in the moved folder find its model where it is now.
    std::fs::write(&spec, tiny_spec("", "[0.2, 0.3]")).unwrap();
    let log = run_ok(&spec, &moved);
    assert!(log.contains("13 already done, 13 ran, 0 failed"), "{log}");
    assert_eq!(rows(&moved.join("tiny/searches")), 18);
}

/// Copies the folder `from` (files and folders, hidden ones too) to `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_failing_unit_is_recorded_and_the_run_goes_on() {
    // 21 positive canvases per class cannot exist among 20 test images of a class.
    let text = tiny_spec("", "[0.2]")
        .replace("test = 240", "test = 60")
        .replace("n = 2", "n = 21");
    let (_dir, spec, results) = spec_in_temp("tiny.toml", &text);
    // The run goes on to the end, then says with its exit status that units failed for good.
    let log = stderr_of_exit(&crate::helpers::run(&spec, &results), 3);
    assert!(log.contains("unit(s) failed for good"), "{log}");
    let root = results.join("tiny");
    let failures = rows(&root.join("failures"));
    assert!(failures >= 3, "{failures} failures\n{log}");
    assert!(
        rows(&root.join("searches")) >= 3 * 15,
        "the other searches ran"
    );
    assert_eq!(rows(&root.join("searches")) + failures, 3 * 22);
    assert_eq!(
        rows(&root.join("patterns")),
        rows(&root.join("searches")) * 2,
        "groups were evaluated on the searches that exist"
    );
    let error = first_error(&root.join("failures"));
    assert!(
        error.contains("positive canvas"),
        "the error names the cause: {error}"
    );

    // The README's promise: polars and pandas read every table.
    let python = std::env::var("ISCP_PYREAD_PYTHON")
        .expect("ISCP_PYREAD_PYTHON (set by `make test`) names a python with polars");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/read_tables.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&root)
        .output()
        .unwrap();
    let text = stdout_ok(&out);
    for table in ["searches", "patterns", "models", "failures"] {
        assert!(
            text.contains(&format!("{table} {}", rows(&root.join(table)))),
            "{table}: {text}"
        );
    }
}
