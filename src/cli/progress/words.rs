//! Progress in words: what a slot's batch does (`natural: training, epoch 2/3, 12,400 img/s`),
//! what a finished one did, and numbers and durations rounded for people.

use super::state::{Batch, Finished};
use iscp_proto::v1::UnitLabel;
use std::collections::BTreeSet;
use std::time::Duration;

/// `12400` → `12,400`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate with about three significant digits: `12,400`, `310`, `4.2`, `0.35`.
pub fn rate(x: f64) -> String {
    if !x.is_finite() || x <= 0.0 {
        return "0".into();
    }
    if x >= 100.0 {
        let digits = (x.log10().floor() as i32 - 2).max(0) as u32;
        let unit = 10u64.pow(digits) as f64;
        thousands(((x / unit).round() * unit) as u64)
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `<1s`, `4s`, `1m 05s`, `2h 03m` (`0s` only for nothing at all).
pub fn duration(d: Duration) -> String {
    if !d.is_zero() && d < Duration::from_millis(500) {
        return "<1s".into();
    }
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Seconds with one decimal under a minute, else as `duration`.
fn took(d: Duration) -> String {
    if d.as_secs_f64() < 60.0 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        duration(d)
    }
}

/// `class 3 (dress)`, `classes 0–9`, `classes 1, 4, 7`.
pub fn classes(labels: &[UnitLabel]) -> String {
    let set: BTreeSet<i64> = labels.iter().map(|l| l.class).filter(|&c| c >= 0).collect();
    let v: Vec<i64> = set.into_iter().collect();
    match v.as_slice() {
        [] => String::new(),
        [c] => {
            let name = labels
                .iter()
                .find(|l| l.class == *c)
                .map(|l| l.class_name.as_str())
                .unwrap_or_default();
            if name.is_empty() || name == c.to_string() {
                format!("class {c}")
            } else {
                format!("class {c} ({name})")
            }
        }
        [first, .., last] if (last - first) as usize + 1 == v.len() => {
            format!("classes {first}–{last}")
        }
        _ => {
            let list: Vec<String> = v.iter().map(|c| c.to_string()).collect();
            format!("classes {}", list.join(", "))
        }
    }
}

/// The distinct values of a label field, joined by `/`, in first-seen order.
fn distinct(labels: &[UnitLabel], f: impl Fn(&UnitLabel) -> &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for l in labels {
        let v = f(l);
        if !v.is_empty() && !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join("/")
}

/// The setting(s) a batch works on.
fn setting(b: &Batch) -> String {
    let s = distinct(&b.labels, |l| &l.setting);
    if s.is_empty() {
        b.kind.clone()
    } else {
        s
    }
}

/// `24 searches`, `1 search`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the batch does, without its rate: `badnets: 24 searches (classes 0–9, positive/white)`.
fn what(b: &Batch) -> String {
    let l = b.labels.first();
    let what_classes = classes(&b.labels);
    let paren = |parts: Vec<String>| {
        let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    };
    match b.kind.as_str() {
        "prepare-model" if l.is_some_and(|l| l.given_model) => {
            format!("{}: checking the given model", setting(b))
        }
        "prepare-model" => format!("{}: training", setting(b)),
        "derive-data" => format!(
            "{}: rebuilding {} on {}",
            setting(b),
            count(b.units, "shard", "shards"),
            distinct(&b.labels, |l| &l.peer)
        ),
        "search" => format!(
            "{}: {}{}",
            setting(b),
            count(b.units, "search", "searches"),
            paren(vec![what_classes, distinct(&b.labels, |l| &l.canvas)])
        ),
        "evaluate" if b.units == 1 => format!("evaluating {} {what_classes}", setting(b)),
        "evaluate" => format!(
            "evaluating {} {what_classes} ({} units)",
            setting(b),
            b.units
        ),
        "baseline" => format!(
            "{}: {}{}",
            setting(b),
            count(b.units, "baseline", "baselines"),
            paren(vec![distinct(&b.labels, |l| &l.method), what_classes])
        ),
        "pictures" => format!("{}: drawing pictures", setting(b)),
        "scan" => format!("{}: scanning for a backdoor", setting(b)),
        "cleanse" => format!("{}: Neural Cleanse", setting(b)),
        "max-margin" => format!("{}: MM-BD", setting(b)),
        "uap-scan" => format!("{}: UAP scan", setting(b)),
        "audit" => "auditing the population".to_string(),
        "transfer" => format!(
            "{} → {}: transferring patterns",
            setting(b),
            distinct(&b.labels, |l| &l.peer)
        ),
        kind => count(b.units, &format!("{kind} unit"), &format!("{kind} units")),
    }
}

/// A running batch: what it does, where its steps are, and its rate.
pub fn running(b: &Batch) -> String {
    let mut s = what(b);
    let per_s = b.steps_per_s();
    match b.kind.as_str() {
        "prepare-model" if b.steps > 0 => {
            let epochs = b.labels.first().map_or(0, |l| l.epochs as u64);
            if epochs > 0 {
                let epoch = (b.step * epochs / b.steps + 1).min(epochs);
                s.push_str(&format!(", epoch {epoch}/{epochs}"));
            } else {
                s.push_str(&format!(
                    ", step {}/{}",
                    thousands(b.step),
                    thousands(b.steps)
                ));
            }
            let batch = b.labels.first().map_or(0, |l| l.images_per_step);
            if let (Some(r), true) = (per_s, batch > 0) {
                s.push_str(&format!(", {} img/s", rate(r * batch as f64)));
            }
        }
        "search" if b.steps > 0 => {
            s.push_str(&format!(
                ", step {}/{}",
                thousands(b.step),
                thousands(b.steps)
            ));
            if let Some(r) = per_s {
                let per_min = r / b.steps as f64 * b.units as f64 * 60.0;
                s.push_str(&format!(", {} searches/min", rate(per_min)));
            }
        }
        _ if b.steps > 0 => {
            s.push_str(&format!(
                ", step {}/{}",
                thousands(b.step),
                thousands(b.steps)
            ));
        }
        // Units of a batch that run one after the other (evaluations, baselines).
        _ if b.units > 1 => s.push_str(&format!(", {} done", b.units - b.open)),
        _ => {}
    }
    s
}

/// A batch that ended: `natural: training, 3 epochs in 9.9s`.
pub fn finished(f: &Finished) -> String {
    let b = &f.batch;
    let mut s = what(b);
    match b.kind.as_str() {
        "prepare-model" if !b.labels.first().is_some_and(|l| l.given_model) => {
            if let Some(epochs) = b.labels.first().map(|l| l.epochs).filter(|&e| e > 0) {
                s = format!("{}, {}", s, count(epochs as usize, "epoch", "epochs"));
            }
        }
        _ => {}
    }
    format!("{s} in {}", took(f.took))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(12_400), "12,400");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(rate(12_437.2), "12,400");
        assert_eq!(rate(310.4), "310");
        assert_eq!(rate(3.7108), "3.7");
        assert_eq!(duration(Duration::from_secs(65)), "1m 05s");
        assert_eq!(duration(Duration::from_millis(200)), "<1s");
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(duration(Duration::from_secs(7_380)), "2h 03m");
    }

    #[test]
    fn classes_are_named_or_ranged() {
        let l = |c: i64, n: &str| UnitLabel {
            class: c,
            class_name: n.into(),
            ..Default::default()
        };
        assert_eq!(classes(&[l(3, "dress")]), "class 3 (dress)");
        assert_eq!(classes(&[l(3, "3")]), "class 3");
        let range: Vec<UnitLabel> = (0..10).map(|c| l(c, "")).collect();
        assert_eq!(classes(&range), "classes 0–9");
        assert_eq!(classes(&[l(1, ""), l(4, ""), l(1, "")]), "classes 1, 4");
    }
}
