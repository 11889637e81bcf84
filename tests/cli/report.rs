//! The report a person reads: `iscp run` ends with the page's path; the labelled grids carry their
//! title, column headers and class names (read back from the PNG, not from pixels); and the page
//! opens in a real browser (headless Chromium) with no console error, every image decoded and
//! the tables holding the rows the run made.

use crate::helpers::{assert_success, run, spec_in_temp};
use std::path::Path;

/// The smoke spec cut down: two settings (natural, BadNets towards class 0), a scan, UAP and
/// Grad-CAM baselines, one search variant.
fn spec() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/smoke.toml"
    ))
    .unwrap()
    .replace("name = \"smoke\"", "name = \"report\"")
    .replace("train = 2000", "train = 1200")
    .replace("test = 600", "test = 300")
    .replace("epochs = 5", "epochs = 2")
    .replace("tv_betas = [0.0, 0.2]", "tv_betas = [0.0]")
    .replace("learned_canvas = [false, true]", "learned_canvas = [false]")
    .replace("uap_eps = [8, 16, 32]", "uap_eps = [8, 32]")
}

fn get<'a>(labels: &'a [(String, String)], key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no `{key}` in {labels:?}"))
}

fn check_grid(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let labels = iscp_figures::grid::labels(&bytes);
    let title = get(&labels, "Title");
    assert!(
        title.starts_with("report · badnets · α 0.2 · released · base"),
        "{title}"
    );
    assert!(
        get(&labels, "iscp:details").contains("attack success"),
        "{labels:?}"
    );
    assert_eq!(get(&labels, "iscp:columns"), "canvas\t1%\t2%\t5%\t10%");
    let rows: Vec<&str> = get(&labels, "iscp:rows").split('\t').collect();
    assert_eq!(rows.len(), 5, "{rows:?}");
    for (c, r) in rows.iter().enumerate() {
        assert!(r.starts_with(&format!("{c} ")), "row {c} is `{r}`");
    }
}

#[test]
fn run_ends_with_a_report_that_opens_in_a_browser() {
    let chromium = std::env::var("ISCP_CHROMIUM").unwrap_or_else(|_| {
        panic!("ISCP_CHROMIUM is not set: `make test` sets it from scripts/setup-chromium.sh")
    });
    let python = std::env::var("ISCP_PYREAD_PYTHON")
        .expect("ISCP_PYREAD_PYTHON (set by `make test`) names a python with websocket-client");
    let (_dir, spec_path, results) = spec_in_temp("report.toml", &spec());
    let out = run(&spec_path, &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let root = results.join("report");
    let page = root.join("report.html");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some(page.to_str().unwrap()),
        "the run's last line is the report's path:\n{stdout}"
    );
    check_grid(&root.join("images/badnets-alpha0p2-released-base-best.png"));

    let probe = std::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/report_check.py"
        ))
        .arg(&chromium)
        .arg(&page)
        .output()
        .expect("python runs");
    assert_success(&probe, "the browser check failed");
    let seen: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "console errors: {seen}"
    );
    let images = seen["images"].as_array().unwrap();
    let pictures = std::fs::read_dir(root.join("images"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    let plots = std::fs::read_dir(root.join("images/plots"))
        .unwrap()
        .count();
    assert_eq!(plots, 4, "PW by size, by canvas, by class, UAP vs ours");
    assert_eq!(images.len(), pictures + plots, "{seen}");
    for img in images {
        assert!(
            img["complete"] == true && img["width"].as_u64() > Some(0),
            "an image did not decode: {img}"
        );
    }
    let table = |id: &str| {
        seen["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no table `{id}`: {seen}"))
            .clone()
    };
    assert_eq!(table("models-table")["rows"], 2, "natural and badnets");
    for pw in ["pw-0", "pw-1"] {
        let t = table(pw);
        assert_eq!(t["rows"], 1, "one pattern group: {t}");
        assert_eq!(
            t["columns"],
            serde_json::json!(["patterns", "classes", "1%", "2%", "5%", "10%"])
        );
    }
    assert_eq!(table("scan-1")["rows"], 5, "a row per class");
    assert_eq!(table("scan-0")["rows"], 5, "a row per class");
    let findings: Vec<&str> = seen["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("badnets: LIKELY BACKDOORED, class 0")),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("natural: no class flagged")),
        "{findings:?}"
    );
    assert!(
        seen["marked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("0 hbar")),
        "the flagged class's scan row is marked: {seen}"
    );
}
