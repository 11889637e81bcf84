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

/// One detector's scores on the clean models, sorted, with their sums: a model's p-value and z in
/// O(log n) (a population may hold 100,000 models), a clean model's with its own score left out.
struct Reference {
    /// NaN scores as −∞ (the lowest), ascending.
    sorted: Vec<f64>,
    finite: usize,
    sum: f64,
    sum_sq: f64,
}

impl Reference {
    fn of(scores: &[f64]) -> Reference {
        let mut sorted: Vec<f64> = scores
            .iter()
            .map(|s| if s.is_nan() { f64::NEG_INFINITY } else { *s })
            .collect();
        sorted.sort_by(f64::total_cmp);
        let finite: Vec<f64> = sorted.iter().copied().filter(|s| s.is_finite()).collect();
        Reference {
            finite: finite.len(),
            sum: finite.iter().sum(),
            sum_sq: finite.iter().map(|s| s * s).sum(),
            sorted,
        }
    }

    /// `row`'s p-value and z-score against every reference score but `own` (a clean model's own
    /// score: a clean model is never its own reference).
    fn calibrate<'a>(&self, row: &'a DetectionRow, own: Option<f64>) -> Calibrated<'a> {
        let s = row.score;
        if s.is_nan() {
            return Calibrated {
                p: 1.0,
                z: f64::NEG_INFINITY,
                row,
            };
        }
        let own = own.filter(|o| !o.is_nan());
        let at_least = self.sorted.len() - self.sorted.partition_point(|&o| o < s);
        // Its own score is at least itself.
        let (above, n) = match own {
            Some(_) => (at_least - 1, self.sorted.len() - 1),
            None => (at_least, self.sorted.len()),
        };
        let p = (1 + above) as f64 / (n + 1) as f64;
        let (mut count, mut sum, mut sum_sq) = (self.finite as f64, self.sum, self.sum_sq);
        if let Some(o) = own.filter(|o| o.is_finite()) {
            count -= 1.0;
            sum -= o;
            sum_sq -= o * o;
        }
        let count = count.max(1.0);
        let mean = sum / count;
        let sd = (sum_sq / count - mean * mean).max(0.0).sqrt();
        // A floor on the spread: clean scores that all agree must not turn a hair into a verdict.
        let z = (s - mean) / sd.max(1e-3 * (1.0 + mean.abs()));
        Calibrated { p, z, row }
    }
}

/// `row`'s p-value and z-score against the reference scores `refs`.
#[cfg(test)]
fn calibrate<'a>(row: &'a DetectionRow, refs: &[f64]) -> Calibrated<'a> {
    Reference::of(refs).calibrate(row, None)
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
    // Each detector's reference: its scores on every clean model.
    let references: HashMap<&str, Reference> = detectors
        .iter()
        .map(|d| {
            let mine = &by_detector[d];
            let scores: Vec<f64> = truth
                .iter()
                .filter(|t| !t.poisoned)
                .filter_map(|t| mine.get(t.model.as_str()).map(|r| r.score))
                .collect();
            (*d, Reference::of(&scores))
        })
        .collect();
    let mut out = Vec::new();
    for t in truth {
        let verdicts: Vec<Calibrated> = detectors
            .iter()
            .filter_map(|d| {
                let row = by_detector[d].get(t.model.as_str())?;
                let own = (!t.poisoned).then_some(row.score);
                Some(references[d].calibrate(row, own))
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
/// step of the p-values: it orders ties); the target and trigger IoU of the most significant
/// detector (smallest p, then largest z); flagged when any detector's row is (the per-class
/// readings' rule, `by_class::FLAG_Z`), its flagged classes those of the flagging rows; the
/// detectors' summed cost.
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
        flagged: verdicts.iter().any(|v| v.row.flagged),
        flagged_classes: flagged_classes(verdicts),
        predicted_target: best.row.predicted_target,
        trigger_iou: best.row.trigger_iou,
        seconds: verdicts.iter().map(|v| v.row.seconds).sum(),
        class_stats: None,
    })
}

/// The classes any flagging row names, once each, ascending (`"1,3"`, as every detector writes them).
fn flagged_classes(verdicts: &[Calibrated]) -> String {
    let mut classes: Vec<i64> = verdicts
        .iter()
        .filter(|v| v.row.flagged)
        .flat_map(|v| {
            v.row
                .flagged_classes
                .split(|c: char| c == ',' || c.is_whitespace())
        })
        .filter_map(|c| c.parse().ok())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let words: Vec<String> = classes.iter().map(i64::to_string).collect();
    words.join(",")
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
            class_stats: None,
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
    fn any_flagging_detector_flags_the_combined_verdict() {
        let mut t = vec![truth("p", true)];
        // p: detector a's rule flags classes 3 and 1, b's class 1; b is the more significant.
        let mut a = row("p", "a", 5.0, 3);
        (a.flagged, a.flagged_classes) = (true, "3,1".into());
        let mut b = row("p", "b", 9.0, 1);
        (b.flagged, b.flagged_classes) = (true, "1".into());
        let mut rows = vec![a, b];
        for i in 0..4 {
            let c = format!("c{i}");
            t.push(truth(&c, false));
            rows.push(row(&c, "a", i as f64, 0));
            rows.push(row(&c, "b", i as f64, 0));
        }
        let fused = fuse(&t, &rows);
        let p = fused.iter().find(|r| r.model == "p").unwrap();
        assert!(p.flagged);
        assert_eq!(p.flagged_classes, "1,3");
        assert_eq!(p.predicted_target, 1);
        assert!(fused.iter().filter(|r| r.model != "p").all(|r| !r.flagged));
    }

    #[test]
    fn a_clean_model_is_never_its_own_reference() {
        // Clean models scoring 5, 1 and 6: the one at 5 is read against 1 and 6 only.
        let reference = Reference::of(&[5.0, 1.0, 6.0]);
        let r = row("c0", "a", 5.0, 0);
        // One of two references scores higher: p = (1 + 1) / (2 + 1).
        assert_eq!(reference.calibrate(&r, Some(5.0)).p, 2.0 / 3.0);
        assert_eq!(calibrate(&r, &[1.0, 6.0]).p, 2.0 / 3.0);
    }
}
