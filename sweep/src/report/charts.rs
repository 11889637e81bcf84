//! The report's plots from a sweep's rows: mean PW against size per setting (full and held-out,
//! the paper's Figure 3 left), mean PW per canvas kind (Figure 3 middle), per-class PW at one
//! size, and UAP success against ε beside ours when baselines ran.

use super::summary::{mean, sizes};
use crate::images::class_label;
use crate::tables::{PatternRow, UapPoint};
use crate::work::pictures::size_header;
use crate::Result;
use iscp_figures::plots::{bars, lines, Bars, Line};
use std::collections::HashMap;

/// A plot: its file name (under `images/plots/`), title, what it shows, and its PNG.
pub struct Chart {
    pub file: String,
    pub title: String,
    pub caption: String,
    pub png: Vec<u8>,
}

/// The size the one-size plots use: 5% when scored, else the middle size.
pub fn focus_size(sizes: &[f64]) -> Option<f64> {
    if sizes.contains(&0.05) {
        return Some(0.05);
    }
    sizes.get(sizes.len() / 2).copied()
}

/// The base-objective rows of each setting, gathered in one pass (the plots read a setting's
/// rows many times: per size, canvas kind and class).
struct BaseRows<'a>(HashMap<&'a str, Vec<&'a PatternRow>>);

impl<'a> BaseRows<'a> {
    fn new(patterns: &'a [PatternRow]) -> Self {
        let mut by: HashMap<&str, Vec<&PatternRow>> = HashMap::new();
        for p in patterns.iter().filter(|p| p.variant == "base") {
            by.entry(p.setting.as_str()).or_default().push(p);
        }
        BaseRows(by)
    }

    fn of(&self, setting: &str) -> impl Iterator<Item = &'a PatternRow> + '_ {
        self.0.get(setting).into_iter().flatten().copied()
    }
}

/// The report's plots, in the page's order: PW against size, then (at the focus size) PW per
/// canvas kind, PW per class, and UAP success beside ours.
pub fn charts(
    settings: &[String],
    patterns: &[PatternRow],
    uap: &[UapPoint],
) -> Result<Vec<Chart>> {
    let sizes = sizes(patterns);
    let mut out = Vec::new();
    if sizes.is_empty() {
        return Ok(out);
    }
    let base = BaseRows::new(patterns);
    out.extend(pw_by_size(settings, &base, &sizes)?);
    let Some(focus) = focus_size(&sizes) else {
        return Ok(out);
    };
    out.extend(pw_by_canvas(settings, patterns, &base, focus)?);
    out.extend(pw_by_class(settings, patterns, &base, focus)?);
    out.extend(uap_vs_ours(settings, uap, &base, focus)?);
    Ok(out)
}

/// Mean PW against size, full test set (solid) and held-out (dashed), per setting.
fn pw_by_size(settings: &[String], base: &BaseRows<'_>, sizes: &[f64]) -> Result<Option<Chart>> {
    let mut ls = Vec::new();
    for (color, s) in settings.iter().enumerate() {
        let at = |size: f64, held: bool| {
            mean(
                base.of(s)
                    .filter(|p| p.is_best && p.size == size)
                    .filter_map(|p| if held { p.pw_heldout } else { p.pw }),
            )
        };
        let full: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|&z| Some((z, at(z, false)?)))
            .collect();
        let held: Vec<(f64, f64)> = sizes
            .iter()
            .filter_map(|&z| Some((z, at(z, true)?)))
            .collect();
        if full.is_empty() {
            continue;
        }
        ls.push(Line {
            name: s.clone(),
            points: full,
            dashed: false,
            color,
        });
        ls.push(Line {
            name: format!("{s} (held-out)"),
            points: held,
            dashed: true,
            color,
        });
    }
    if ls.is_empty() {
        return Ok(None);
    }
    let title = "Mean PW against pattern size";
    Ok(Some(Chart {
        file: "pw-by-size.png".into(),
        title: title.into(),
        caption: "Mean over classes of the best pattern's PW (base objective); dashed: on held-out test images. Larger patterns predict their class more often; a backdoored setting is high already at the smallest size.".into(),
        png: lines(title, "pattern size (share of pixels)", "mean PW", &ls, true)?,
    }))
}

/// Mean PW per canvas kind at the focus size: the best patterns, by their canvas's kind (only
/// the best canvas of a size is scored on the whole test set, so only those have a PW).
fn pw_by_canvas(
    settings: &[String],
    patterns: &[PatternRow],
    base: &BaseRows<'_>,
    focus: f64,
) -> Result<Option<Chart>> {
    let mut kinds: Vec<String> = Vec::new();
    for p in patterns.iter().filter(|p| p.variant == "base") {
        if !kinds.contains(&p.canvas_kind) {
            kinds.push(p.canvas_kind.clone());
        }
    }
    let series: Vec<Bars> = settings
        .iter()
        .map(|s| Bars {
            name: s.clone(),
            values: kinds
                .iter()
                .map(|k| {
                    mean(
                        base.of(s)
                            .filter(|p| p.size == focus && &p.canvas_kind == k)
                            .filter_map(|p| p.pw),
                    )
                })
                .collect(),
        })
        .filter(|b| b.values.iter().any(|v| v.is_some()))
        .collect();
    if series.is_empty() || kinds.is_empty() {
        return Ok(None);
    }
    let title = format!("Mean PW per canvas kind at {}", size_header(focus));
    Ok(Some(Chart {
        file: "pw-by-canvas.png".into(),
        caption: "The best pattern of each class at this size, grouped by the kind of canvas it came from (only a size's best canvas is scored on the whole test set): which starting images make the most predictive patterns.".into(),
        png: bars(&title, "mean PW", &kinds, &series)?,
        title,
    }))
}

/// Per-class PW of the best pattern at the focus size.
fn pw_by_class(
    settings: &[String],
    patterns: &[PatternRow],
    base: &BaseRows<'_>,
    focus: f64,
) -> Result<Option<Chart>> {
    let mut classes: Vec<(i64, String)> = patterns
        .iter()
        .map(|p| (p.class, class_label(p.class, &p.class_name)))
        .collect();
    classes.sort();
    classes.dedup();
    let series: Vec<Bars> = settings
        .iter()
        .map(|s| Bars {
            name: s.clone(),
            values: classes
                .iter()
                .map(|(c, _)| {
                    mean(
                        base.of(s)
                            .filter(|p| p.is_best && p.size == focus && p.class == *c)
                            .filter_map(|p| p.pw),
                    )
                })
                .collect(),
        })
        .filter(|b| b.values.iter().any(|v| v.is_some()))
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let title = format!("PW per class at {}", size_header(focus));
    let names: Vec<String> = classes.into_iter().map(|(_, n)| n).collect();
    Ok(Some(Chart {
        file: "pw-by-class.png".into(),
        caption: "The best pattern of each class: a backdoor's target class stands out.".into(),
        png: bars(&title, "PW", &names, &series)?,
        title,
    }))
}

/// UAP success against ε, with our PW at the focus size as a flat line (when baselines ran).
fn uap_vs_ours(
    settings: &[String],
    uap: &[UapPoint],
    base: &BaseRows<'_>,
    focus: f64,
) -> Result<Option<Chart>> {
    if uap.is_empty() {
        return Ok(None);
    }
    let mut ls = Vec::new();
    for (color, s) in settings.iter().enumerate() {
        ls.extend(uap_lines(s, color, uap, base, focus));
    }
    if ls.is_empty() {
        return Ok(None);
    }
    let title = "UAP success against ε, beside ours";
    Ok(Some(Chart {
        file: "uap-vs-ours.png".into(),
        title: title.into(),
        caption: "A universal adversarial perturbation's attack success (mean over its target classes) at each L∞ radius ε, and our patterns' mean PW (dashed).".into(),
        png: lines(title, "ε (L∞, pixel units)", "success / PW", &ls, false)?,
    }))
}

/// One setting's lines in the UAP plot: its UAP success at each ε, then our PW at the focus size
/// across the same ε range (dashed); none without UAP points.
fn uap_lines(
    s: &str,
    color: usize,
    uap: &[UapPoint],
    base: &BaseRows<'_>,
    focus: f64,
) -> Vec<Line> {
    let mut eps: Vec<f64> = uap
        .iter()
        .filter(|u| u.setting == s)
        .map(|u| u.epsilon)
        .collect();
    eps.sort_by(f64::total_cmp);
    eps.dedup();
    if eps.is_empty() {
        return vec![];
    }
    let pts: Vec<(f64, f64)> = eps
        .iter()
        .filter_map(|&e| {
            let m = mean(
                uap.iter()
                    .filter(|u| u.setting == s && u.epsilon == e)
                    .map(|u| u.success),
            )?;
            Some((e, m))
        })
        .collect();
    let mut ls = vec![Line {
        name: format!("{s}: UAP"),
        points: pts,
        dashed: false,
        color,
    }];
    if let Some(ours) = mean(
        base.of(s)
            .filter(|p| p.is_best && p.size == focus)
            .filter_map(|p| p.pw),
    ) {
        let (lo, hi) = (eps[0], eps[eps.len() - 1]);
        ls.push(Line {
            name: format!("{s}: ours at {}", size_header(focus)),
            points: if hi > lo {
                vec![(lo, ours), (hi, ours)]
            } else {
                vec![(lo, ours)]
            },
            dashed: true,
            color,
        });
    }
    ls
}
