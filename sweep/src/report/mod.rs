//! A sweep's report: one HTML page (`report.html` in the experiment's results folder) that
//! answers "which settings look backdoored, and how predictive are the patterns at each size"
//! without code. It reads only the results folder (its tables and pictures), so `iscp report`,
//! `iscp run` and the coordinator at the end of a sweep all make the same page.

mod audit_view;
mod charts;
mod summary;

pub use charts::focus_size;
pub use summary::{mean, verdicts, Verdict};

use crate::tables::{
    read_failure_rows, read_models, read_patterns, read_scan_rows, read_table, read_uap_points,
};
use crate::{Result, SweepError};
use iscp_figures::page::{render, Audit, Figure, Report};
use iscp_proto::Table;
use std::path::{Path, PathBuf};

/// Settings beyond which the per-setting PW tables are folded away.
const FOLD_PW_ABOVE: usize = 8;

/// The page's file name in an experiment's results folder.
pub const PAGE: &str = "report.html";

/// Whether `dir` holds an experiment's results (a table folder of its own).
pub fn is_experiment(dir: &Path) -> bool {
    [Table::Models, Table::Patterns, Table::Searches, Table::Scan]
        .iter()
        .any(|t| t.dir(dir).is_dir())
}

/// The grids beside the page, sorted (`images/*.png`), with the titles their PNGs carry.
fn pictures(root: &Path) -> Result<Vec<Figure>> {
    let dir = root.join("images");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(vec![]);
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let path = dir.join(&n);
        let bytes = std::fs::read(&path).map_err(|e| SweepError::io(&path, e))?;
        let title = iscp_figures::grid::labels(&bytes)
            .into_iter()
            .find(|(k, _)| k == "Title")
            .map(|(_, v)| v)
            .unwrap_or_else(|| n.trim_end_matches(".png").to_string());
        out.push(Figure {
            src: format!("images/{n}"),
            title,
            caption: format!("({n})"),
        });
    }
    Ok(out)
}

/// Writes `<root>/report.html` (and its plots under `<root>/images/plots/`) for the experiment
/// `experiment` whose results are in `root`; returns the page's path.
pub fn write_report(root: &Path, experiment: &str) -> Result<PathBuf> {
    let models = read_models(&Table::Models.dir(root))?;
    let patterns = read_patterns(&Table::Patterns.dir(root))?;
    let mut scans = read_table(&Table::Scan.dir(root), read_scan_rows)?;
    let failures = read_table(&Table::Failures.dir(root), read_failure_rows)?;
    let uap = read_table(&Table::Baselines.dir(root), read_uap_points)?;
    let settings = summary::settings(&models, &patterns);
    summary::order_scans(&mut scans, &settings);
    let mut plots = Vec::new();
    for c in charts::charts(&settings, &patterns, &uap)? {
        let rel = format!("images/plots/{}", c.file);
        write_atomically(&root.join(&rel), &c.png)?;
        plots.push(Figure {
            src: rel,
            title: c.title,
            caption: c.caption,
        });
    }
    let classes = {
        let mut c: Vec<i64> = patterns.iter().map(|p| p.class).collect();
        c.sort();
        c.dedup();
        c.len()
    };
    let searches = {
        let mut s: Vec<&str> = patterns.iter().map(|p| p.search_id.as_str()).collect();
        s.sort();
        s.dedup();
        s.len()
    };
    let audit = audit_view::audit_view(root, &models)?;
    let mut pictures = pictures(root)?;
    if let Some(a) = &audit {
        // A population's pictures: the suspects' only, the evidence a reader needs.
        pictures.retain(|f| {
            a.suspects
                .iter()
                .any(|s| f.src.starts_with(&format!("images/{s}-")))
        });
    }
    let report = Report {
        experiment: experiment.to_string(),
        findings: summary::findings(&settings, &models, &patterns, &scans, &failures),
        units: format!(
            "{} setting(s), {classes} class(es), {searches} searches scored at {} size(s), {} failed attempt(s) · results in {}",
            settings.len(),
            summary::sizes(&patterns).len(),
            failures.len(),
            root.display()
        ),
        fold_pw: settings.len() > FOLD_PW_ABOVE,
        audit: audit.map(|a| Audit {
            quality: a.quality,
            calibration: a.calibration,
            models: a.models,
            roc: a.roc,
        }),
        models: summary::models_table(&models),
        pw: summary::pw_sections(&settings, &patterns),
        scans: summary::scan_sections(&scans),
        plots,
        pictures,
        failures: summary::failures_table(&failures),
        folder: root.display().to_string(),
    };
    let html = render(&report)?;
    let page = root.join(PAGE);
    write_atomically(&page, html.as_bytes())?;
    Ok(page)
}

/// Writes `path` through a temporary file of this process and thread, renamed into place, so
/// that a reader (or a concurrent `iscp report`) never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| SweepError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| SweepError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SweepError::io(path, e))
}
