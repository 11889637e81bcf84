//! What a sweep's tables say, as the report's text and tables: the findings at the top, the
//! models table, PW by size per setting, the scan's verdicts, the failures.

use crate::images::class_label;
use crate::scan::ScanRow;
use crate::tables::{FailureRow, ModelRow, PatternRow};
use crate::work::pictures::size_header;
use iscp_figures::page::{Section, Table};
use std::collections::BTreeMap;

/// The mean of some values; None when there are none.
pub fn mean(v: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (s, n) = v
        .into_iter()
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

fn f3(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.3}"))
}

fn f2(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

/// The settings in the order their models appear, then any others the patterns name.
pub fn settings(models: &[ModelRow], patterns: &[PatternRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in models
        .iter()
        .map(|m| &m.setting)
        .chain(patterns.iter().map(|p| &p.setting))
    {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The sizes the patterns were scored at, ascending.
pub fn sizes(patterns: &[PatternRow]) -> Vec<f64> {
    let mut v: Vec<f64> = patterns.iter().map(|p| p.size).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

pub fn models_table(models: &[ModelRow]) -> Table {
    let mut t = Table::new(&[
        "setting",
        "kind",
        "architecture",
        "clean accuracy",
        "attack success",
        "poison target",
        "trigger",
        "robust accuracy",
        "prepare s",
    ]);
    for m in models {
        t.push(
            vec![
                m.setting.clone(),
                m.setting_kind.clone(),
                m.architecture.clone(),
                f3(Some(m.clean_accuracy)),
                f3(m.attack_success_rate),
                m.poison_target.map_or("–".into(), |v| v.to_string()),
                m.trigger.clone().unwrap_or_else(|| "–".into()),
                f3(m.robust_accuracy),
                format!("{:.1}", m.training_s),
            ],
            false,
        );
    }
    t
}

/// A pattern group's name: `α 0.2 · released · base`.
fn group(p: &PatternRow) -> String {
    format!("α {} · {} · {}", p.alpha, p.objective, p.variant)
}

/// Per setting: a row per (α, objective, variant) group, the mean PW of the best patterns over
/// classes at each size, full test set and held-out (in parentheses).
pub fn pw_sections(settings: &[String], patterns: &[PatternRow]) -> Vec<Section> {
    let sizes = sizes(patterns);
    let mut cols = vec!["patterns".to_string(), "classes".into()];
    cols.extend(sizes.iter().map(|&s| size_header(s)));
    let cols: Vec<&str> = cols.iter().map(|s| s.as_str()).collect();
    let mut out = Vec::new();
    for setting in settings {
        let best: Vec<&PatternRow> = patterns
            .iter()
            .filter(|p| &p.setting == setting && p.is_best)
            .collect();
        if best.is_empty() {
            continue;
        }
        let mut groups: BTreeMap<String, Vec<&PatternRow>> = BTreeMap::new();
        for p in best {
            groups.entry(group(p)).or_default().push(p);
        }
        let mut t = Table::new(&cols);
        for (name, rows) in groups {
            let mut classes: Vec<i64> = rows.iter().map(|r| r.class).collect();
            classes.sort();
            classes.dedup();
            let mut row = vec![name, classes.len().to_string()];
            for &s in &sizes {
                let at: Vec<&&PatternRow> = rows.iter().filter(|r| r.size == s).collect();
                let full = mean(at.iter().filter_map(|r| r.pw));
                let held = mean(at.iter().filter_map(|r| r.pw_heldout));
                row.push(match (full, held) {
                    (None, _) => "–".into(),
                    (Some(f), None) => f2(Some(f)),
                    (Some(f), Some(h)) => format!("{} ({})", f2(Some(f)), f2(Some(h))),
                });
            }
            t.push(row, false);
        }
        out.push(Section {
            title: setting.clone(),
            note: "mean PW over classes, full test set (held-out in parentheses)".into(),
            table: t,
        });
    }
    out
}

/// One verdict per scanned group: its flagged classes, or none.
pub struct Verdict {
    pub group: String,
    pub flagged: Vec<String>,
    pub top: Option<(String, f64, f64)>,
}

/// The scan's groups (`model` column) in order, each with its rows.
fn scan_groups(scans: &[ScanRow]) -> Vec<(String, Vec<&ScanRow>)> {
    let mut out: Vec<(String, Vec<&ScanRow>)> = Vec::new();
    for r in scans {
        match out.iter_mut().find(|(g, _)| *g == r.model) {
            Some((_, v)) => v.push(r),
            None => out.push((r.model.clone(), vec![r])),
        }
    }
    out
}

pub fn verdicts(scans: &[ScanRow]) -> Vec<Verdict> {
    scan_groups(scans)
        .into_iter()
        .map(|(group, rows)| {
            let flagged = rows
                .iter()
                .filter(|r| r.flagged)
                .map(|r| class_label(r.class, &r.class_name))
                .collect();
            let top = rows
                .iter()
                .max_by(|a, b| a.anomaly_index.total_cmp(&b.anomaly_index))
                .map(|r| (class_label(r.class, &r.class_name), r.pw, r.anomaly_index));
            Verdict {
                group,
                flagged,
                top,
            }
        })
        .collect()
}

/// An anomaly index with one decimal, never `-0.0`.
fn index(v: f64) -> String {
    let s = format!("{v:.1}");
    if s == "-0.0" {
        "0.0".into()
    } else {
        s
    }
}

/// The setting a scan group belongs to (`<setting>-alpha…`, or the setting itself).
pub fn setting_of<'a>(group: &str, settings: &'a [String]) -> Option<&'a String> {
    settings
        .iter()
        .find(|s| group == s.as_str() || group.starts_with(&format!("{s}-alpha")))
}

/// Scan rows ordered by their setting's place in `settings`, then by group (stable otherwise).
pub fn order_scans(scans: &mut [ScanRow], settings: &[String]) {
    scans.sort_by_key(|r| {
        let at = setting_of(&r.model, settings)
            .and_then(|s| settings.iter().position(|x| x == s))
            .unwrap_or(usize::MAX);
        (at, r.model.clone())
    });
}

pub fn scan_sections(scans: &[ScanRow]) -> Vec<Section> {
    scan_groups(scans)
        .into_iter()
        .map(|(group, rows)| {
            let mut t = Table::new(&["class", "canvas", "size", "PW", "anomaly index", "flagged"]);
            for r in &rows {
                t.push(
                    vec![
                        class_label(r.class, &r.class_name),
                        r.canvas_kind.clone(),
                        size_header(r.size),
                        f2(Some(r.pw)),
                        index(r.anomaly_index),
                        if r.flagged { "yes".into() } else { "".into() },
                    ],
                    r.flagged,
                );
            }
            let flagged = rows.iter().filter(|r| r.flagged).count();
            Section {
                title: group,
                note: if flagged == 0 {
                    "no class flagged".into()
                } else {
                    format!("{flagged} class(es) flagged: likely backdoored")
                },
                table: t,
            }
        })
        .collect()
}

/// The lines at the top of the page: per setting its scan verdict, its model's scores, and how
/// predictive its patterns are at the smallest and largest size; then the failures.
pub fn findings(
    settings: &[String],
    models: &[ModelRow],
    patterns: &[PatternRow],
    scans: &[ScanRow],
    failures: &[FailureRow],
) -> Vec<String> {
    let verdicts = verdicts(scans);
    let sizes = sizes(patterns);
    let mut out = Vec::new();
    for s in settings {
        let mine: Vec<&Verdict> = verdicts
            .iter()
            .filter(|v| setting_of(&v.group, settings) == Some(s))
            .collect();
        let mut line = if mine.is_empty() {
            format!("{s}: not scanned")
        } else {
            let flagged: Vec<&&Verdict> = mine.iter().filter(|v| !v.flagged.is_empty()).collect();
            if flagged.is_empty() {
                format!("{s}: no class flagged in {} scan(s)", mine.len())
            } else {
                let mut classes: Vec<String> = flagged
                    .iter()
                    .flat_map(|v| v.flagged.iter().cloned())
                    .collect();
                classes.sort();
                classes.dedup();
                format!(
                    "{s}: LIKELY BACKDOORED, class {} flagged in {} of {} scan(s)",
                    classes.join(", "),
                    flagged.len(),
                    mine.len()
                )
            }
        };
        if let Some(m) = models.iter().find(|m| &m.setting == s) {
            line.push_str(&format!("; clean accuracy {:.3}", m.clean_accuracy));
            if let Some(a) = m.attack_success_rate {
                line.push_str(&format!(", attack success {a:.3}"));
                if let Some(t) = m.poison_target {
                    line.push_str(&format!(" towards class {t}"));
                }
            }
        }
        let pw_at = |size: f64| {
            mean(
                patterns
                    .iter()
                    .filter(|p| {
                        &p.setting == s && p.is_best && p.size == size && p.variant == "base"
                    })
                    .filter_map(|p| p.pw),
            )
        };
        if let (Some(&lo), Some(&hi)) = (sizes.first(), sizes.last()) {
            if let (Some(a), Some(b)) = (pw_at(lo), pw_at(hi)) {
                line.push_str(&format!(
                    "; mean PW {a:.2} at {} and {b:.2} at {}",
                    size_header(lo),
                    size_header(hi)
                ));
            }
        }
        out.push(line);
    }
    if !failures.is_empty() {
        let gave_up = failures.iter().filter(|f| !f.retryable).count();
        out.push(format!(
            "{} failed attempt(s), {gave_up} not retryable: see Failures",
            failures.len()
        ));
    }
    out
}

pub fn failures_table(failures: &[FailureRow]) -> Table {
    let mut t = Table::new(&["unit kind", "unit", "attempt", "worker", "reason", "error"]);
    for f in failures {
        let first = f.error.lines().next().unwrap_or_default();
        t.push(
            vec![
                f.unit_kind.clone(),
                f.unit_id.clone(),
                f.attempt.to_string(),
                f.worker.clone(),
                f.reason.clone(),
                first.chars().take(200).collect(),
            ],
            !f.retryable,
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(setting: &str, class: i64, size: f64, pw: f64) -> PatternRow {
        PatternRow {
            unit_id: "e".into(),
            search_id: format!("s{class}"),
            setting: setting.into(),
            class,
            class_name: format!("c{class}"),
            alpha: 0.2,
            objective: "released".into(),
            variant: "base".into(),
            tv_beta: 0.0,
            canvas_kind: "white".into(),
            canvas_rank: 0,
            canvas_index: -1,
            size,
            k: 1,
            selection_loss: 0.1,
            is_best: true,
            pw: Some(pw),
            pw_heldout: Some(pw - 0.1),
            acc_with_pattern: None,
            acc_with_pattern_heldout: None,
            original_class_acc: None,
            original_class_acc_heldout: None,
            oom_halvings: 0,
            evaluate_s: 0.0,
        }
    }

    fn scan(group: &str, class: i64, flagged: bool) -> ScanRow {
        ScanRow {
            model: group.into(),
            class,
            class_name: format!("c{class}"),
            canvas_kind: "white".into(),
            canvas_index: -1,
            size: 0.01,
            k: 1,
            pw: if flagged { 1.0 } else { 0.1 },
            anomaly_index: if flagged { 9.0 } else { -0.04 },
            flagged,
        }
    }

    #[test]
    fn findings_name_the_flagged_setting_and_tables_average_over_classes() {
        let settings: Vec<String> = vec!["natural".into(), "bad".into(), "badnets".into()];
        let patterns = vec![
            pattern("natural", 0, 0.01, 0.2),
            pattern("natural", 1, 0.01, 0.4),
            pattern("natural", 0, 0.1, 0.9),
            pattern("badnets", 0, 0.01, 1.0),
        ];
        let scans = vec![
            scan("natural-alpha0p2-released-base", 0, false),
            scan("badnets-alpha0p2-released-base", 0, true),
            scan("badnets-alpha0p2-released-base", 1, false),
        ];
        let f = findings(&settings, &[], &patterns, &scans, &[]);
        assert!(
            f[0].starts_with("natural: no class flagged in 1 scan(s)"),
            "{f:?}"
        );
        assert!(f[0].contains("mean PW 0.30 at 1% and 0.90 at 10%"), "{f:?}");
        assert_eq!(f[1], "bad: not scanned", "`bad` is not `badnets`");
        assert!(
            f[2].starts_with("badnets: LIKELY BACKDOORED, class 0 c0 flagged in 1 of 1"),
            "{f:?}"
        );
        let pw = pw_sections(&settings, &patterns);
        assert_eq!(pw.len(), 2, "settings with patterns only");
        assert_eq!(
            pw[0].table.rows[0],
            ["α 0.2 · released · base", "2", "0.30 (0.20)", "0.90 (0.80)"]
        );
        let s = scan_sections(&scans);
        assert_eq!(s[1].table.marked, [true, false]);
        assert_eq!(s[0].table.rows[0][4], "0.0", "never -0.0");
    }
}
