//! The combined verdict: each detector's score made an empirical p-value against the other clean
//! models (leave-one-out), fused by the smallest times the number of detectors (Bonferroni), ties
//! broken by the largest z-score against the same clean models; as one more detector's rows for
//! the audit to score like the others.

use super::Truth;
use crate::tables::{DetectionRow, COMBINED};
use std::collections::HashMap;

/// One detector's verdict on one model, made comparable with the others'.
struct Calibrated<'a> {
    /// The share of reference clean models scoring at least as high (counting the model itself:
    /// (1 + k) / (n + 1)).
    p: f64,
    /// The score in standard deviations above the reference clean models' mean.
    z: f64,
    row: &'a DetectionRow,
}

/// The clean models `model` is compared with: every other clean model (a clean model's verdict is
/// a leave-one-out one).
fn reference<'a>(truth: &'a [Truth], model: &Truth) -> Vec<&'a str> {
    truth
        .iter()
        .filter(|t| !t.poisoned && t.model != model.model)
        .map(|t| t.model.as_str())
        .collect()
}

/// `row`'s p-value and z-score against the reference scores (NaN scores count as the lowest).
fn calibrate<'a>(row: &'a DetectionRow, refs: &[f64]) -> Calibrated<'a> {
    let others: Vec<f64> = refs
        .iter()
        .map(|s| if s.is_nan() { f64::NEG_INFINITY } else { *s })
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
    // A floor on the spread: clean scores that all agree must not turn a hair into a verdict.
    let z = (s - mean) / sd.max(1e-3 * (1.0 + mean.abs()));
    Calibrated { p, z, row }
}

/// The combined detector's row of every model with a row from at least one detector.
pub fn fuse(truth: &[Truth], rows: &[DetectionRow]) -> Vec<DetectionRow> {
    let mut by_detector: HashMap<&str, HashMap<&str, &DetectionRow>> = HashMap::new();
    for r in rows.iter().filter(|r| r.detector != COMBINED) {
        by_detector
            .entry(r.detector.as_str())
            .or_default()
            .insert(r.model.as_str(), r);
    }
    let mut detectors: Vec<&str> = by_detector.keys().copied().collect();
    detectors.sort_unstable();
    let mut out = Vec::new();
    for t in truth {
        let refs = reference(truth, t);
        let verdicts: Vec<Calibrated> = detectors
            .iter()
            .filter_map(|d| {
                let mine = &by_detector[d];
                let row = mine.get(t.model.as_str())?;
                let scores: Vec<f64> = refs
                    .iter()
                    .filter_map(|m| mine.get(m).map(|r| r.score))
                    .collect();
                Some(calibrate(row, &scores))
            })
            .collect();
        if let Some(row) = combine(&verdicts) {
            out.push(row);
        }
    }
    out
}

/// The fused row: −log10 of the smallest p-value times the number of detectors (below 0 when
/// that passes 1: the order is kept), plus less than 0.01 growing with the largest z (under one
/// step of the p-values: it orders ties); the target, flag and trigger IoU of the most significant
/// detector (smallest p, then largest z); the detectors' summed cost.
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
        let fused = fuse(&t, &rows);
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

    #[test]
    fn a_clean_model_is_never_its_own_reference() {
        let t = vec![truth("p", true), truth("c0", false), truth("c1", false)];
        assert_eq!(reference(&t, &t[0]), ["c0", "c1"]);
        assert_eq!(reference(&t, &t[1]), ["c1"]);
        // One of two references scores higher: p = (1 + 1) / (2 + 1).
        let r = row("c0", "a", 5.0, 0);
        assert_eq!(calibrate(&r, &[1.0, 6.0]).p, 2.0 / 3.0);
    }
}
