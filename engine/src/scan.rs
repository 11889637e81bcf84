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
    let med = median(values);
    let mad = median(&values.iter().map(|v| (v - med).abs()).collect::<Vec<_>>()) * MAD_CONSISTENCY;
    let scale = mad.max(MIN_SCALE);
    values.iter().map(|v| (v - med) / scale).collect()
}

/// Whether a class is flagged: anomalously *more* predictive than the others.
pub fn flagged(index: f64) -> bool {
    index > FLAG_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outlier_is_flagged() {
        let pw = [0.05, 0.1, 0.08, 0.95, 0.07, 0.06, 0.09];
        let a = anomaly_indices(&pw);
        // median 0.08, deviations → MAD = 0.02 → scale 0.029652
        assert!((a[3] - (0.95 - 0.08) / (0.02 * 1.4826)).abs() < 1e-9);
        let f: Vec<bool> = a.iter().map(|&x| flagged(x)).collect();
        assert_eq!(f, vec![false, false, false, true, false, false, false]);
    }

    #[test]
    fn low_outliers_and_flat_values_are_not_flagged() {
        assert!(anomaly_indices(&[0.5, 0.5, 0.01, 0.5])
            .iter()
            .all(|&x| !flagged(x)));
        assert!(anomaly_indices(&[0.1; 5]).iter().all(|&x| x == 0.0));
        // MAD 0: a few images' difference is noise, a large one is still flagged.
        assert!(!flagged(
            anomaly_indices(&[0.002, 0.002, 0.002, 0.0, 0.015])[4]
        ));
        assert!(flagged(anomaly_indices(&[0.1, 0.1, 0.1, 0.9])[3]));
    }
}
