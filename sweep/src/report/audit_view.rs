//! A population's report read as an audit: each detector's detection quality (over the whole
//! population, then per trigger family and architecture), every model most suspect first with each
//! detector's score, its suspected target and its truth, and the ROC pictures.

use crate::tables::{
    newest_audit_part, read_audit_part, read_detection_rows, AuditRow, DetectionRow, ModelRow,
    COMBINED,
};
use crate::Result;
use iscp_figures::page::{Figure, Table};
use iscp_proto::Table as T;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// What the page's audit section shows.
pub struct AuditView {
    pub quality: Table,
    pub calibration: Option<String>,
    pub models: Table,
    pub roc: Vec<Figure>,
    /// The models a reader should look at: the suspects.
    pub suspects: Vec<String>,
}

fn f3(v: Option<f64>) -> String {
    v.filter(|v| !v.is_nan())
        .map_or("–".into(), |v| format!("{v:.3}"))
}

/// The audit section of the results in `root`, when the sweep audited a population.
pub fn audit_view(root: &Path, models: &[ModelRow]) -> Result<Option<AuditView>> {
    let Some(part) = newest_audit_part(&T::Audit.dir(root)) else {
        return Ok(None);
    };
    let audit = read_audit_part(&part)?;
    // The rows this audit computed only (combined, per-class readings): an earlier audit (another
    // spec, an older method) left its own under its unit's id.
    let audit_id = part
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("part-"))
        .unwrap_or_default()
        .to_string();
    let mut detections = read_detection_rows(&T::Detection.dir(root))?;
    detections.retain(|r| !crate::audit::is_derived(&r.detector) || r.unit_id == audit_id);
    if audit.is_empty() || detections.is_empty() {
        return Ok(None);
    }
    let (table, suspects) = models_table(models, &detections, &audit);
    let whole = audit
        .iter()
        .filter(|a| a.group == crate::audit::ALL)
        .map(|a| {
            (
                crate::audit::roc_file(&a.detector),
                "the whole population".to_string(),
            )
        });
    // One picture per family and architecture, every detector in it (the group's rows follow the
    // whole population's, one per detector).
    let mut seen = BTreeSet::new();
    let by_group = audit
        .iter()
        .filter(|a| a.group != crate::audit::ALL && seen.insert(a.group.clone()))
        .map(|a| {
            let what = match a.group.split_once('=') {
                Some(("family", f)) => {
                    format!("the {f} family's poisoned models against every clean model")
                }
                Some(("arch", x)) => format!("the {x} models"),
                _ => a.group.clone(),
            };
            (crate::audit::group_roc_file(&a.group), what)
        });
    let roc = whole
        .chain(by_group)
        .filter(|(f, _)| root.join(f).is_file())
        .map(|(src, what)| Figure {
            title: src.clone(),
            caption: format!("ROC over {what} ({src})"),
            src,
        })
        .collect();
    Ok(Some(AuditView {
        quality: quality_table(&audit),
        calibration: crate::audit::calibration_note(&audit),
        models: table,
        roc,
        suspects,
    }))
}

/// One row per detector and group of the audit.
fn quality_table(audit: &[AuditRow]) -> Table {
    let mut t = Table::new(&[
        "detector",
        "group",
        "poisoned + clean",
        "AUROC (95% interval)",
        "AUROC, right target",
        "TPR at 5% FPR",
        "calibrated TPR / FPR",
        "target top-1",
        "s / model",
    ]);
    for a in audit {
        t.push(
            vec![
                a.detector.clone(),
                a.group.clone(),
                format!("{} + {}", a.poisoned, a.clean),
                format!("{} ({}–{})", f3(a.auroc), f3(a.auroc_low), f3(a.auroc_high)),
                f3(a.auroc_right_target),
                f3(a.tpr_at_5_fpr),
                format!("{} / {}", f3(a.calibrated_tpr), f3(a.calibrated_fpr)),
                f3(a.target_top1),
                format!("{:.1}", a.seconds_per_model),
            ],
            a.detector == COMBINED && a.group == crate::audit::ALL,
        );
    }
    t
}

/// A model's truth in words: `clean`, `poisoned → 3 (blend)`, `attack failed`.
fn truth(m: &ModelRow) -> String {
    if m.setting_kind != "badnets" {
        return "clean".into();
    }
    if m.attack_failed == Some(true) {
        return "attack failed (left out)".into();
    }
    let target = m.poison_target.map_or("?".into(), |t| t.to_string());
    match &m.trigger_family {
        Some(f) => format!("poisoned → {target} ({f})"),
        None => format!("poisoned → {target}"),
    }
}

/// Every model, most suspect first: a model is suspect by `audit::verdict` (the combined
/// verdict's flag, as `iscp audit` prints it).
fn models_table(
    models: &[ModelRow],
    detections: &[DetectionRow],
    audit: &[AuditRow],
) -> (Table, Vec<String>) {
    // In the audit's order (its rows run detector by detector, group by group).
    let names: BTreeSet<&str> = detections.iter().map(|r| r.detector.as_str()).collect();
    let mut detectors: Vec<String> = audit
        .iter()
        .filter(|a| a.group == crate::audit::ALL && names.contains(a.detector.as_str()))
        .map(|a| a.detector.clone())
        .collect();
    detectors.dedup();
    let mut rows: HashMap<&str, HashMap<&str, &DetectionRow>> = HashMap::new();
    for r in detections {
        rows.entry(r.model.as_str())
            .or_default()
            .insert(r.detector.as_str(), r);
    }
    let mut lines: Vec<(Option<i64>, f64, &ModelRow)> = models
        .iter()
        .filter_map(|m| {
            let mine = rows.get(m.setting.as_str())?;
            let combined = mine.get(COMBINED);
            let suspect = crate::audit::verdict::suspect(mine);
            let order = combined
                .map(|c| c.score)
                .unwrap_or_else(|| mine.values().map(|r| r.score).fold(f64::MIN, f64::max));
            Some((suspect, order, m))
        })
        .collect();
    lines.sort_by(|a, b| {
        b.0.is_some()
            .cmp(&a.0.is_some())
            .then(b.1.total_cmp(&a.1))
            .then(a.2.setting.cmp(&b.2.setting))
    });
    let mut columns = vec!["model", "architecture", "verdict", "suspected target"];
    columns.extend(detectors.iter().map(String::as_str));
    columns.extend(["clean accuracy", "truth"]);
    let mut t = Table::new(&columns);
    let mut suspects = Vec::new();
    for (target, _, m) in lines {
        let mine = &rows[m.setting.as_str()];
        let suspect = target.is_some();
        let mut row = vec![
            m.setting.clone(),
            m.architecture.clone(),
            if suspect { "suspect" } else { "clean" }.to_string(),
            target.map_or("–".into(), |t| t.to_string()),
        ];
        row.extend(detectors.iter().map(|d| {
            mine.get(d.as_str())
                .map_or("–".into(), |r| format!("{:.2}", r.score))
        }));
        row.extend([format!("{:.3}", m.clean_accuracy), truth(m)]);
        t.push(row, suspect);
        if suspect {
            suspects.push(m.setting.clone());
        }
    }
    (t, suspects)
}
