//! Each detector's per-class statistic read against the same class of the clean models: a class
//! that is a natural outlier in every clean model of an architecture (Fashion-MNIST's "bag" has
//! small-norm triggers in clean small CNNs; "shirt" is easy to reach by a small perturbation) is
//! then no longer a suspect, while a backdoor target stands out from its own class's spread.
//! As one more detector per base detector (`neural-cleanse-by-class`, …) for the audit to score.

use super::Truth;
use crate::tables::{DetectionRow, ISCP, MM_BD, NEURAL_CLEANSE, NEURAL_CLEANSE_ORIGINAL, UAP};
use std::collections::HashMap;

/// Clean models of the same architecture a class is read against, at least; fewer, and every
/// clean model is.
pub const MIN_SAME_ARCH: usize = 4;

/// A per-class z-score at least this high flags the class. References are small (a dozen clean
/// models of an architecture) and class statistics heavy-tailed: at 3 (0.1% a class for a normal
/// spread) 40% of the clean models of two generated populations had one of their 40 readings
/// flagged; at 6, 1 of those 62 (its largest reading 7.9), and none of their 53 backdoored
/// models was left unflagged (their smallest largest reading 14.1; docs/benchmarks.md).
pub const FLAG_Z: f64 = 6.0;

/// The name of `detector`'s per-class reading.
pub fn name(detector: &str) -> String {
    format!("{detector}{SUFFIX}")
}

/// What `name` appends.
pub const SUFFIX: &str = "-by-class";

/// A class statistic turned so that larger is more suspicious: Neural Cleanse's reversed mask
/// norm on a log scale, negated (a backdoor needs a far smaller mask); ISCP's PW, MM-BD's margin and
/// the UAP's success as they are. None for a detector with no per-class reading.
fn suspicion(detector: &str) -> Option<fn(f32) -> f64> {
    match detector {
        d if d == NEURAL_CLEANSE || d == NEURAL_CLEANSE_ORIGINAL => {
            Some(|v| -(v.max(1e-9) as f64).ln())
        }
        d if d == ISCP || d == MM_BD || d == UAP => Some(|v| v as f64),
        _ => None,
    }
}

/// A reference value further than this many robust standard deviations (1.4826 × the median
/// absolute deviation) from the class's median is left out of its mean and spread: a backdoored
/// model among the references (no manifest, or a wrong one) must not widen the spread that would
/// reveal the next one with the same target. Measured on two generated populations: at 8 the
/// known-clean references lose almost nothing, while with every model as reference the AUROC
/// of the fused readings stays 1.000 (plain mean and spread: 0.982).
pub const CLIP_ROBUST_SD: f64 = 8.0;

/// One class's reference: the mean and spread of the clean models' values within the clip.
struct ClassReference {
    count: f64,
    sum: f64,
    sum_sq: f64,
    /// The values kept: a model's own value outside them was never counted.
    lo: f64,
    hi: f64,
}

impl ClassReference {
    /// The reference of `values` (finite ones), far outliers left out.
    fn of(mut values: Vec<f64>) -> ClassReference {
        values.retain(|v| v.is_finite());
        let (lo, hi) = clip(&mut values);
        let kept = values.iter().filter(|v| (lo..=hi).contains(*v));
        let (mut count, mut sum, mut sum_sq) = (0.0, 0.0, 0.0);
        for v in kept {
            count += 1.0;
            sum += v;
            sum_sq += v * v;
        }
        ClassReference {
            count,
            sum,
            sum_sq,
            lo,
            hi,
        }
    }

    /// z of `v` against the reference without `own` (a clean model's own value).
    fn z(&self, v: f64, own: Option<f64>) -> f64 {
        let (mut n, mut s, mut q) = (self.count, self.sum, self.sum_sq);
        // Only a value the reference counted is taken out of it.
        if let Some(o) = own.filter(|o| o.is_finite() && (self.lo..=self.hi).contains(o)) {
            n -= 1.0;
            s -= o;
            q -= o * o;
        }
        if n < 1.0 || !v.is_finite() {
            return f64::NEG_INFINITY;
        }
        let mean = s / n;
        let sd = (q / n - mean * mean).max(0.0).sqrt();
        (v - mean) / sd.max(spread_floor(mean))
    }
}

/// A floor on the spread: classes on which every clean model agrees must not turn a hair into a
/// verdict.
fn spread_floor(centre: f64) -> f64 {
    1e-3 * (1.0 + centre.abs())
}

/// The range of values a reference keeps: the median ± `CLIP_ROBUST_SD` robust standard
/// deviations; everything when the median absolute deviation is under the spread floor (over
/// half the values agree: the clip would drop the honest rest). O(n) (`values` reordered).
fn clip(values: &mut [f64]) -> (f64, f64) {
    let everything = (f64::NEG_INFINITY, f64::INFINITY);
    if values.len() < 3 {
        return everything;
    }
    let median = median(values);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    let scale = 1.4826 * self::median(&mut dev);
    if scale < spread_floor(median) {
        return everything;
    }
    (
        median - CLIP_ROBUST_SD * scale,
        median + CLIP_ROBUST_SD * scale,
    )
}

/// The median of non-empty `values` (reordered), the upper one of an even count.
fn median(values: &mut [f64]) -> f64 {
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// Per class, the reference of its values over `models` (NaN and missing values left out).
fn references(values: &[&Vec<f64>], classes: usize) -> Vec<ClassReference> {
    (0..classes)
        .map(|c| ClassReference::of(values.iter().filter_map(|x| x.get(c).copied()).collect()))
        .collect()
}

/// The per-class readings of every detector with class statistics, one row per model it scored.
pub fn derive(truth: &[Truth], rows: &[DetectionRow]) -> Vec<DetectionRow> {
    let by_model: HashMap<&str, &Truth> = truth.iter().map(|t| (t.model.as_str(), t)).collect();
    let mut detectors: Vec<&str> = rows.iter().map(|r| r.detector.as_str()).collect();
    detectors.sort_unstable();
    detectors.dedup();
    let mut out = Vec::new();
    for d in detectors {
        let Some(turn) = suspicion(d) else { continue };
        // Each model's turned statistics; a model without them (an older part) is left out.
        let stats: Vec<(&DetectionRow, &Truth, Vec<f64>)> = rows
            .iter()
            .filter(|r| r.detector == d)
            .filter_map(|r| {
                let t = by_model.get(r.model.as_str())?;
                let s = r.class_stats.as_ref()?;
                Some((r, *t, s.iter().map(|&v| turn(v)).collect()))
            })
            .collect();
        let classes = stats.iter().map(|(_, _, s)| s.len()).max().unwrap_or(0);
        let clean = |arch: Option<&str>| -> Vec<&Vec<f64>> {
            stats
                .iter()
                .filter(|(_, t, _)| !t.poisoned && arch.is_none_or(|a| t.arch == a))
                .map(|(_, _, s)| s)
                .collect()
        };
        let everyone = references(&clean(None), classes);
        let mut per_arch: HashMap<&str, Option<Vec<ClassReference>>> = HashMap::new();
        for (row, t, s) in &stats {
            let arch = per_arch.entry(t.arch.as_str()).or_insert_with(|| {
                let mine = clean(Some(&t.arch));
                // Its own model is left out of a clean model's reference: one more needed.
                (mine.len() > MIN_SAME_ARCH).then(|| references(&mine, classes))
            });
            let reference = arch.as_ref().unwrap_or(&everyone);
            let z: Vec<f64> = s
                .iter()
                .zip(reference)
                .map(|(&v, r)| r.z(v, (!t.poisoned).then_some(v)))
                .collect();
            out.push(reading(d, row, &z));
        }
    }
    out
}

/// The per-class reading's row: the largest z is the score and names the target.
fn reading(detector: &str, row: &DetectionRow, z: &[f64]) -> DetectionRow {
    let (target, top) =
        z.iter()
            .copied()
            .enumerate()
            .fold((0usize, f64::NEG_INFINITY), |best, (c, v)| {
                if v > best.1 {
                    (c, v)
                } else {
                    best
                }
            });
    let flagged: Vec<String> = z
        .iter()
        .enumerate()
        .filter(|(_, &v)| v >= FLAG_Z)
        .map(|(c, _)| c.to_string())
        .collect();
    // No reference at all (a lone clean model): no reading.
    let top = if top == f64::NEG_INFINITY {
        f64::NAN
    } else {
        top
    };
    DetectionRow {
        unit_id: String::new(),
        model: row.model.clone(),
        detector: name(detector),
        score: top,
        max_index: top,
        max_pw: None,
        min_norm: None,
        flagged: top >= FLAG_Z,
        flagged_classes: flagged.join(","),
        predicted_target: target as i64,
        // The base detector's trigger IoU belongs to its own target.
        trigger_iou: row
            .trigger_iou
            .filter(|_| row.predicted_target == target as i64),
        seconds: row.seconds,
        class_stats: Some(
            z.iter()
                .map(|&v| if v.is_finite() { v as f32 } else { f32::NAN })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(model: &str, poisoned: bool, arch: &str) -> Truth {
        Truth {
            model: model.into(),
            poisoned,
            attack_failed: false,
            target: poisoned.then_some(2),
            family: None,
            arch: arch.into(),
        }
    }

    fn row(model: &str, detector: &str, stats: &[f32]) -> DetectionRow {
        DetectionRow {
            unit_id: format!("u-{model}"),
            model: model.into(),
            detector: detector.into(),
            score: 0.0,
            max_index: 0.0,
            max_pw: None,
            min_norm: None,
            flagged: false,
            flagged_classes: String::new(),
            predicted_target: 0,
            trigger_iou: Some(0.5),
            seconds: 3.0,
            class_stats: Some(stats.to_vec()),
        }
    }

    #[test]
    fn a_class_small_in_every_clean_model_is_not_a_suspect_but_a_target_is() {
        // Neural Cleanse norms: class 0 is small in every clean model (a natural outlier), the
        // poisoned model's class 2 is small in it alone.
        let mut t = Vec::new();
        let mut rows = Vec::new();
        for i in 0..6 {
            let m = format!("c{i}");
            t.push(truth(&m, false, "small-cnn"));
            let wobble = 1.0 + 0.05 * i as f32;
            rows.push(row(
                &m,
                NEURAL_CLEANSE,
                &[2.0 * wobble, 20.0 * wobble, 21.0 / wobble],
            ));
        }
        t.push(truth("p", true, "small-cnn"));
        rows.push(row("p", NEURAL_CLEANSE, &[2.1, 19.0, 3.0]));
        let got = derive(&t, &rows);
        assert_eq!(got.len(), 7);
        let p = got.iter().find(|r| r.model == "p").unwrap();
        assert_eq!(p.detector, "neural-cleanse-by-class");
        assert_eq!(p.predicted_target, 2);
        assert!(p.flagged && p.score > FLAG_Z, "{p:?}");
        assert_eq!(p.trigger_iou, None, "the base detector named class 0");
        assert_eq!(p.seconds, 3.0);
        for c in got.iter().filter(|r| r.model != "p") {
            assert!(c.score < p.score && !c.flagged, "{c:?}");
        }
    }

    #[test]
    fn backdoored_models_among_the_references_do_not_hide_each_other() {
        // No ground truth (every model taken for clean, as `iscp audit` without a manifest):
        // two of twelve models share the backdoor target 1, one more has target 2. Left in the
        // reference, the first two would widen class 1's spread enough to hide each other.
        let mut t = Vec::new();
        let mut rows = Vec::new();
        for i in 0..12 {
            let m = format!("m{i:02}");
            t.push(truth(&m, false, "small-cnn"));
            let w = 0.02 * ((i % 5) as f32 - 2.0);
            let mut stats = [1.0 + w, 1.0 - w, 2.0 + w];
            match i {
                3 | 7 => stats[1] = 3.0,
                10 => stats[2] = 4.0,
                _ => {}
            }
            rows.push(row(&m, MM_BD, &stats));
        }
        let got = derive(&t, &rows);
        for r in &got {
            let backdoored = ["m03", "m07", "m10"].contains(&r.model.as_str());
            assert_eq!(r.flagged, backdoored, "{r:?}");
            if backdoored {
                let target = if r.model == "m10" { 2 } else { 1 };
                assert_eq!(r.predicted_target, target, "{r:?}");
                assert_eq!(r.flagged_classes, target.to_string());
            } else {
                assert!(r.score < 3.0, "{r:?}");
            }
        }
    }

    #[test]
    fn half_the_references_agreeing_keeps_the_rest() {
        // Most models reach class 0 with certainty (1.0), the rest a little less: their spread is
        // honest, not outliers to drop.
        let mut values = vec![1.0; 7];
        values.extend([0.9, 0.8, 0.95, 0.85]);
        let r = ClassReference::of(values);
        assert_eq!(r.count, 11.0);
        assert!(r.z(0.8, None) > -3.0, "{}", r.z(0.8, None));
    }

    #[test]
    fn a_rare_architecture_is_read_against_every_clean_model() {
        let mut t = vec![truth("g", false, "gap-cnn")];
        let mut rows = vec![row("g", UAP, &[0.5, 0.1])];
        for i in 0..3 {
            let m = format!("c{i}");
            t.push(truth(&m, false, "small-cnn"));
            rows.push(row(&m, UAP, &[0.1 + 0.01 * i as f32, 0.1]));
        }
        // Other detectors without a per-class reading are left alone.
        rows.push(row("g", "something-else", &[1.0]));
        let got = derive(&t, &rows);
        assert_eq!(got.len(), 4);
        let g = got.iter().find(|r| r.model == "g").unwrap();
        assert_eq!(g.predicted_target, 0);
        assert!(g.score > 10.0, "{g:?}");
    }
}
