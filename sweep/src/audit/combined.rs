//! The combined verdict: each detector's score standardised against the clean models of the same
//! architecture (a detector's scores on clean models depend on the architecture: Neural Cleanse's
//! anomaly index runs high on small CNNs and low on GAP CNNs), then averaged over the detectors,
//! as one more detector's rows for the audit to score like the others.

use super::Truth;
use crate::tables::{DetectionRow, COMBINED};
use std::collections::HashMap;

/// Fewest other clean models of a model's architecture to standardise against; with fewer, every
/// other clean model is the reference.
pub const MIN_REFERENCE: usize = 3;

/// One detector's verdict on one model, made comparable with the others'.
struct Calibrated<'a> {
    /// The score in standard deviations above the reference clean models' mean.
    z: f64,
    row: &'a DetectionRow,
}

/// The clean models `model` is compared with: the other clean models of its architecture, or
/// every other clean model when its architecture has fewer than `MIN_REFERENCE`. A model is never
/// its own reference (a clean model's score is a leave-one-out one).
fn reference<'a>(truth: &'a [Truth], model: &Truth) -> Vec<&'a str> {
    let others = || {
        truth
            .iter()
            .filter(move |t| !t.poisoned && t.model != model.model)
    };
    let same: Vec<&str> = others()
        .filter(|t| t.arch == model.arch)
        .map(|t| t.model.as_str())
        .collect();
    if same.len() >= MIN_REFERENCE {
        same
    } else {
        others().map(|t| t.model.as_str()).collect()
    }
}

/// `row`'s z-score against the reference scores (NaN scores count as the lowest).
fn calibrate<'a>(row: &'a DetectionRow, refs: &[f64]) -> Calibrated<'a> {
    let finite: Vec<f64> = refs.iter().copied().filter(|o| o.is_finite()).collect();
    if row.score.is_nan() || finite.is_empty() {
        return Calibrated { z: 0.0, row };
    }
    let n = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let sd = (finite.iter().map(|o| (o - mean).powi(2)).sum::<f64>() / n).sqrt();
    // A floor on the spread: a detector whose clean scores all agree must not turn a hair's
    // difference into a verdict.
    let z = (row.score - mean) / sd.max(1e-3 * (1.0 + mean.abs()));
    Calibrated {
        z: z.clamp(-MAX_Z, MAX_Z),
        row,
    }
}

/// The largest |z| one detector contributes: one detector's extreme score cannot outvote the
/// others alone.
const MAX_Z: f64 = 10.0;

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

/// The fused row: the mean of the detectors' z-scores; the target, flag and trigger IoU of the
/// detector with the largest z; the detectors' summed cost.
fn combine(verdicts: &[Calibrated]) -> Option<DetectionRow> {
    let best = verdicts.iter().max_by(|a, b| {
        a.z.total_cmp(&b.z)
            .then(b.row.detector.cmp(&a.row.detector))
    })?;
    let mean = verdicts.iter().map(|v| v.z).sum::<f64>() / verdicts.len() as f64;
    Some(DetectionRow {
        unit_id: String::new(),
        model: best.row.model.clone(),
        detector: COMBINED.into(),
        score: mean,
        max_index: best.z,
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

    fn truth(model: &str, poisoned: bool, arch: &str) -> Truth {
        Truth {
            model: model.into(),
            poisoned,
            attack_failed: false,
            target: poisoned.then_some(1),
            family: None,
            arch: arch.into(),
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
    fn each_detector_is_read_against_clean_models_of_the_same_architecture() {
        // Detector `a` runs high on architecture y's clean models: 5 there is ordinary, while on
        // x it stands out; `b` sees nothing anywhere.
        let mut t = vec![truth("px", true, "x"), truth("py", true, "y")];
        let mut rows = vec![
            row("px", "a", 5.0, 1),
            row("px", "b", 0.5, 4),
            row("py", "a", 9.0, 1),
            row("py", "b", 0.5, 4),
        ];
        for i in 0..4 {
            for (arch, base) in [("x", 1.0), ("y", 5.0)] {
                let c = format!("c{arch}{i}");
                t.push(truth(&c, false, arch));
                rows.push(row(&c, "a", base + 0.1 * i as f64, 0));
                rows.push(row(&c, "b", 0.4 + 0.05 * i as f64, 0));
            }
        }
        let fused = fuse(&t, &rows);
        assert_eq!(fused.len(), 10);
        let by: HashMap<&str, &DetectionRow> =
            fused.iter().map(|r| (r.model.as_str(), r)).collect();
        for p in ["px", "py"] {
            assert_eq!(
                by[p].predicted_target, 1,
                "{p}: the detector that saw it names it"
            );
            assert_eq!(by[p].seconds, 2.0);
            for r in fused.iter().filter(|r| r.model.starts_with('c')) {
                assert!(by[p].score > r.score, "{p} over {}: {fused:?}", r.model);
            }
        }
        // Architecture y's clean models read 5.0–5.3 on `a`: ordinary there, not suspect.
        assert!(by["cy3"].score < by["px"].score);
    }

    #[test]
    fn too_few_clean_models_of_an_architecture_fall_back_to_all() {
        let t = vec![
            truth("p", true, "x"),
            truth("c0", false, "x"),
            truth("c1", false, "y"),
            truth("c2", false, "y"),
        ];
        let refs = reference(&t, &t[0]);
        assert_eq!(refs, ["c0", "c1", "c2"]);
        assert_eq!(reference(&t, &t[1]), ["c1", "c2"], "never itself");
    }
}
