//! The backdoor scan's statistics: an anomaly index per class by median absolute deviation, as
//! Neural Cleanse does, over the predictive power of each class's small pattern.

/// Consistency constant that makes the MAD estimate a normal distribution's standard deviation.
pub const MAD_CONSISTENCY: f64 = 1.4826;
/// Classes whose anomaly index exceeds this are flagged.
pub const FLAG_THRESHOLD: f64 = 2.0;
/// The smallest spread used as the unit of deviation. PW is a share of images, and when most
/// classes sit at the same near-zero PW the MAD collapses to 0, which would turn a difference of a
/// few images into an "infinite" anomaly; deviations under 0.05 PW are treated as noise.
pub const MIN_SCALE: f64 = 0.05;

/// How far from chance towards perfect a model's clean accuracy must be for its scan to mean
/// anything: at chance every class's patterns are noise and the anomaly index flags noise (an
/// untrained model was flagged on three classes). 0.2 asks 0.28 of a 10-class model, 0.6 of two.
pub const MIN_ACCURACY_ABOVE_CHANCE: f64 = 0.2;

/// The least clean accuracy a `classes`-way model needs to be audited.
pub fn min_auditable_accuracy(classes: usize) -> f64 {
    let chance = 1.0 / classes.max(1) as f64;
    chance + MIN_ACCURACY_ABOVE_CHANCE * (1.0 - chance)
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// (value − median) / max(1.4826 · MAD, MIN_SCALE) for each value. Positive means more
/// predictive than the typical class.
pub fn anomaly_indices(values: &[f64]) -> Vec<f64> {
    anomaly_indices_floored(values, MIN_SCALE)
}

/// (value − median) / max(1.4826 · MAD, `min_scale`) for each value.
pub fn anomaly_indices_floored(values: &[f64], min_scale: f64) -> Vec<f64> {
    let med = median(values);
    let mad = median(&values.iter().map(|v| (v - med).abs()).collect::<Vec<_>>()) * MAD_CONSISTENCY;
    let scale = mad.max(min_scale);
    values.iter().map(|v| (v - med) / scale).collect()
}

/// A flagged class's small pattern must also be almost fully predictive (the paper: recovered 1%
/// triggers are, natural 1% patterns are not). On Fashion-MNIST a natural model's `bag` and `shirt`
/// 1% patterns reach PW 0.3–0.5 and stand out by MAD alone; a BadNets target's reaches 1.09.
pub const MIN_PW: f64 = 0.75;

/// Whether a class is flagged: anomalously more predictive than the others (index > 2) and almost
/// fully predictive (PW ≥ 0.75).
pub fn flagged(index: f64, pw: f64) -> bool {
    index > FLAG_THRESHOLD && pw >= MIN_PW
}

/// Intersection over union of a mask's `truth.len()` highest cells with the true trigger's cells
/// (flat H×W indices): 1 when the top cells are the trigger, 0 when none of them is.
pub fn top_k_iou(mask: &[f32], truth: &[usize]) -> f64 {
    let k = truth.len().min(mask.len());
    if k == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..mask.len()).collect();
    order.sort_by(|&a, &b| mask[b].total_cmp(&mask[a]).then(a.cmp(&b)));
    let top: std::collections::HashSet<usize> = order[..k].iter().copied().collect();
    let inter = truth.iter().filter(|i| top.contains(i)).count();
    inter as f64 / (top.len() + truth.len() - inter) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_the_top_cells() {
        let mut mask = vec![0.0f32; 16];
        for i in [5, 6, 9, 10] {
            mask[i] = 1.0;
        }
        assert_eq!(top_k_iou(&mask, &[5, 6, 9, 10]), 1.0);
        // top 4 = {5, 6, 9, 10}; truth {9, 10, 13, 14}: 2 shared of 6.
        assert!((top_k_iou(&mask, &[9, 10, 13, 14]) - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(top_k_iou(&mask, &[0, 1, 2, 3]), 0.0);
    }

    #[test]
    fn chance_level_is_not_auditable() {
        assert!((min_auditable_accuracy(10) - 0.28).abs() < 1e-12);
        assert!((min_auditable_accuracy(2) - 0.6).abs() < 1e-12);
        assert!(min_auditable_accuracy(1000) > 0.2);
    }

    #[test]
    fn one_outlier_is_flagged() {
        let pw = [0.05, 0.3, 0.15, 0.95, 0.1, 0.25, 0.2];
        let a = anomaly_indices(&pw);
        // median 0.2, deviations → MAD = 0.1 → scale 0.14826
        assert!((a[3] - (0.95 - 0.2) / (0.1 * 1.4826)).abs() < 1e-9);
        let f: Vec<bool> = a
            .iter()
            .zip(&pw)
            .map(|(&x, &p)| flagged(x, p.max(0.8)))
            .collect();
        assert_eq!(f, vec![false, false, false, true, false, false, false]);
    }

    #[test]
    fn low_outliers_and_flat_values_are_not_flagged() {
        assert!(anomaly_indices(&[0.5, 0.5, 0.01, 0.5])
            .iter()
            .all(|&x| !flagged(x, 1.0)));
        assert!(anomaly_indices(&[0.1; 5]).iter().all(|&x| x == 0.0));
        // MAD 0: a few images' difference is noise, a large one is still flagged.
        assert!(!flagged(
            anomaly_indices(&[0.002, 0.002, 0.002, 0.0, 0.015])[4],
            1.0
        ));
        assert!(flagged(anomaly_indices(&[0.1, 0.1, 0.1, 0.9])[3], 0.9));
        // Anomalous but far from fully predictive: a natural class, not a trigger.
        let pw = [0.14, 0.005, 0.05, 0.055, 0.07, 0.04, 0.18, 0.02, 0.32, 0.02];
        assert!(anomaly_indices(&pw)[8] > FLAG_THRESHOLD);
        assert!(!flagged(anomaly_indices(&pw)[8], pw[8]));
    }
}
