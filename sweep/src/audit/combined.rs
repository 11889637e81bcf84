//! The combined verdict: each detector's score made an empirical p-value against the clean
//! models held out for calibration, fused by the smallest (times the number of detectors,
//! Bonferroni), as one more detector's rows for the audit to score like the others.

use super::metrics::split_heldout;
use super::Truth;
use crate::tables::{DetectionRow, COMBINED};
use std::collections::HashMap;

/// One detector's verdict on one model, made comparable with the others'.
struct Calibrated<'a> {
    p: f64,
    /// The score in standard deviations above the reference clean models' mean.
    z: f64,
    row: &'a DetectionRow,
}

/// The reference clean models: those held out for calibration (the audit's split), or every
/// clean model when none is held out.
fn reference(truth: &[Truth], share: f64, seed: u64) -> Vec<&str> {
    let clean: Vec<&Truth> = truth.iter().filter(|t| !t.poisoned).collect();
    let held = split_heldout(clean.len(), share, seed);
    let chosen: Vec<&str> = clean
        .iter()
        .zip(&held)
        .filter(|(_, &h)| h)
        .map(|(t, _)| t.model.as_str())
        .collect();
    if chosen.is_empty() {
        clean.iter().map(|t| t.model.as_str()).collect()
    } else {
        chosen
    }
}

/// `row`'s p-value and z-score against `refs` (model, score), leaving the model itself out.
fn calibrate<'a>(row: &'a DetectionRow, refs: &[(&str, f64)]) -> Calibrated<'a> {
    let others: Vec<f64> = refs
        .iter()
        .filter(|(m, _)| *m != row.model)
        .map(|(_, s)| if s.is_nan() { f64::NEG_INFINITY } else { *s })
        .collect();
    let s = row.score;
    if s.is_nan() {
        return Calibrated {
            p: 1.0,
            z: f64::NEG_INFINITY,
            row,
        };
    }
    let above = others.iter().filter(|&&o| o >= s).count();
    let p = (1 + above) as f64 / (others.len() + 1) as f64;
    let finite: Vec<f64> = others.iter().copied().filter(|o| o.is_finite()).collect();
    let n = finite.len().max(1) as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let sd = (finite.iter().map(|o| (o - mean).powi(2)).sum::<f64>() / n).sqrt();
    let z = (s - mean) / sd.max(1e-9 + 1e-3 * mean.abs());
    Calibrated { p, z, row }
}

/// The combined detector's row of every model with a row from at least one detector.
pub fn fuse(truth: &[Truth], rows: &[DetectionRow], share: f64, seed: u64) -> Vec<DetectionRow> {
    let refs = reference(truth, share, seed);
    let mut by_detector: HashMap<&str, HashMap<&str, &DetectionRow>> = HashMap::new();
    for r in rows.iter().filter(|r| r.detector != COMBINED) {
        by_detector
            .entry(r.detector.as_str())
            .or_default()
            .insert(r.model.as_str(), r);
    }
    let ref_scores: HashMap<&str, Vec<(&str, f64)>> = by_detector
        .iter()
        .map(|(d, m)| {
            let scores = refs
                .iter()
                .filter_map(|name| m.get(name).map(|r| (*name, r.score)))
                .collect();
            (*d, scores)
        })
        .collect();
    let mut out = Vec::new();
    for t in truth {
        let verdicts: Vec<Calibrated> = by_detector
            .iter()
            .filter_map(|(d, m)| {
                m.get(t.model.as_str())
                    .map(|r| calibrate(r, &ref_scores[d]))
            })
            .collect();
        if let Some(row) = combine(&verdicts) {
            out.push(row);
        }
    }
    out
}

/// The fused row: −log10 of the Bonferroni-corrected smallest p-value (below 0 when the product
/// passes 1: the order is kept), ties broken by the largest z (less than 0.01, under one step of
/// the p-values, never saturating);
/// the target, flag and trigger IoU of the most significant detector; the detectors' summed cost.
fn combine(verdicts: &[Calibrated]) -> Option<DetectionRow> {
    let best = verdicts.iter().min_by(|a, b| {
        a.p.total_cmp(&b.p)
            .then(b.z.total_cmp(&a.z))
            .then(a.row.detector.cmp(&b.row.detector))
    })?;
    let p = best.p * verdicts.len() as f64;
    let z = verdicts
        .iter()
        .map(|v| v.z)
        .fold(f64::NEG_INFINITY, f64::max);
    let tie_break = if z.is_finite() {
        0.01 * z / (1.0 + z.abs())
    } else {
        -0.01
    };
    Some(DetectionRow {
        unit_id: String::new(),
        model: best.row.model.clone(),
        detector: COMBINED.into(),
        score: -p.log10() + tie_break,
        max_index: z,
        max_pw: None,
        min_norm: None,
        flagged: best.row.flagged,
        flagged_classes: best.row.flagged_classes.clone(),
        predicted_target: best.row.predicted_target,
        trigger_iou: best.row.trigger_iou,
        seconds: verdicts.iter().map(|v| v.row.seconds).sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(model: &str, poisoned: bool) -> Truth {
        Truth {
            model: model.into(),
            poisoned,
            attack_failed: false,
            target: poisoned.then_some(1),
            family: None,
            arch: "small-cnn".into(),
        }
    }

    fn row(model: &str, detector: &str, score: f64, target: i64) -> DetectionRow {
        DetectionRow {
            unit_id: String::new(),
            model: model.into(),
            detector: detector.into(),
            score,
            max_index: score,
            max_pw: None,
            min_norm: None,
            flagged: false,
            flagged_classes: String::new(),
            predicted_target: target,
            trigger_iou: None,
            seconds: 1.0,
        }
    }

    #[test]
    fn the_most_significant_detector_decides_and_names_the_target() {
        let mut t = vec![truth("p0", true), truth("p1", true)];
        let mut rows = vec![
            // p0: only detector a sees it; p1: only b.
            row("p0", "a", 9.0, 1),
            row("p0", "b", 0.1, 4),
            row("p1", "a", 0.2, 3),
            row("p1", "b", 7.0, 1),
        ];
        for i in 0..8 {
            let c = format!("c{i}");
            t.push(truth(&c, false));
            rows.push(row(&c, "a", i as f64 / 8.0, 0));
            rows.push(row(&c, "b", (7 - i) as f64 / 8.0, 0));
        }
        let fused = fuse(&t, &rows, 0.0, 1);
        assert_eq!(fused.len(), 10);
        let by: HashMap<&str, &DetectionRow> =
            fused.iter().map(|r| (r.model.as_str(), r)).collect();
        for p in ["p0", "p1"] {
            assert_eq!(by[p].predicted_target, 1, "{p}");
            assert_eq!(by[p].seconds, 2.0);
            for i in 0..8 {
                let c = by[format!("c{i}").as_str()];
                assert!(by[p].score > c.score, "{p} over c{i}: {by:?}");
            }
        }
    }
}
