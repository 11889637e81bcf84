//! How closely two searched masks agree on what matters: the pixels each pattern size selects
//! (top-k sets, their Jaccard index) and, with an evaluator, the predictive power they reach.
//!
//! Masks computed in batches of different shapes, on different threads or CPUs are not
//! bit-identical: oneDNN picks other kernels and the sums round differently. Under the signed
//! (`released`) step a rounding difference can flip the sign of a near-zero gradient and move one
//! mask value by several steps, while the selected pixels stay the same. So tests and benchmarks
//! compare selections and PW, never raw floats.

use crate::pattern::{binarize, pattern_k, Evaluator};
use crate::Result;
use tch::Tensor;

/// Sizes compared by default: the paper's 1, 2, 3, 5 and 10%.
pub const SIZES: [f64; 5] = [0.01, 0.02, 0.03, 0.05, 0.10];

/// The flat indices of the `k` largest values of `mask` (ties: lower index first), ascending.
pub fn top_k(mask: &[f32], k: usize) -> Vec<usize> {
    let mut out: Vec<usize> = binarize(mask, k)
        .iter()
        .enumerate()
        .filter(|(_, &v)| v == 1.0)
        .map(|(i, _)| i)
        .collect();
    out.sort_unstable();
    out
}

/// |A ∩ B| / |A ∪ B| of the two top-k sets (1 when both are empty).
pub fn jaccard(a: &[f32], b: &[f32], k: usize) -> f64 {
    let (sa, sb) = (top_k(a, k), top_k(b, k));
    let inter = sa.iter().filter(|i| sb.binary_search(i).is_ok()).count();
    let union = sa.len() + sb.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// The k-th largest value of `mask` (the threshold its top-k set clears).
fn kth_value(mask: &[f32], k: usize) -> f32 {
    let mut v = mask.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    v.get(k.saturating_sub(1))
        .copied()
        .unwrap_or(f32::NEG_INFINITY)
}

/// Checks that `a` and `b` select the same top-k pixels, up to near-ties: a pixel that one mask
/// selects and the other does not must lie within `tie` of the other mask's k-th value (it was on
/// the boundary, where a single rounding difference decides). Says which pixel broke it.
pub fn same_selection(a: &[f32], b: &[f32], k: usize, tie: f32) -> std::result::Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("masks of {} and {} values", a.len(), b.len()));
    }
    let (sa, sb) = (top_k(a, k), top_k(b, k));
    let (ta, tb) = (kth_value(a, k), kth_value(b, k));
    for (sel, other, thr, name) in [(&sa, b, tb, "second"), (&sb, a, ta, "first")] {
        let in_other = if name == "second" { &sb } else { &sa };
        for &i in sel.iter().filter(|i| in_other.binary_search(i).is_err()) {
            if other[i] < thr - tie {
                return Err(format!(
                    "top-{k}: pixel {i} is selected by one mask but sits at {:.4} in the {name}, \
                     {:.4} below its threshold {thr:.4}",
                    other[i],
                    thr - other[i]
                ));
            }
        }
    }
    Ok(())
}

/// How two masks of the same search compare at each size.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeAgreement {
    pub size: f64,
    pub k: usize,
    pub jaccard: f64,
    /// |PW(a) − PW(b)| on the full test set, when an evaluator was given.
    pub pw_difference: Option<f64>,
}

/// Compares `a` and `b` (masks over `canvas` towards `target`) at every size of `sizes`: Jaccard
/// of the top-k sets, and the PW difference when `eval` is given.
pub fn compare(
    a: &[f32],
    b: &[f32],
    sizes: &[f64],
    eval: Option<(&Evaluator, i64, &Tensor)>,
) -> Result<Vec<SizeAgreement>> {
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let k = pattern_k(size, a.len());
        let pw_difference = match eval {
            Some((ev, target, canvas)) => {
                let (ba, bb) = (binarize(a, k), binarize(b, k));
                let r = ev.evaluate_many(target, &[(canvas, &ba), (canvas, &bb)])?;
                let d = (r[0].pw - r[1].pw).abs();
                // Both NaN (a class the model never gets right) agree.
                Some(if r[0].pw.is_nan() && r[1].pw.is_nan() {
                    0.0
                } else {
                    d
                })
            }
            None => None,
        };
        out.push(SizeAgreement {
            size,
            k,
            jaccard: jaccard(a, b, k),
            pw_difference,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_and_jaccard_follow_the_largest_values() {
        let a = [0.9, 0.1, 0.8, 0.7, 0.0];
        let b = [0.9, 0.75, 0.8, 0.1, 0.0];
        assert_eq!(top_k(&a, 2), vec![0, 2]);
        assert_eq!(jaccard(&a, &b, 2), 1.0);
        assert!((jaccard(&a, &b, 3) - 0.5).abs() < 1e-12);
        assert_eq!(jaccard(&a, &b, 0), 1.0);
    }

    #[test]
    fn a_swap_on_the_boundary_is_a_near_tie_and_a_far_one_is_not() {
        let a = [0.90, 0.70, 0.69, 0.10];
        let near = [0.90, 0.69, 0.70, 0.10];
        assert!(same_selection(&a, &near, 2, 0.05).is_ok());
        let far = [0.90, 0.20, 0.70, 0.10];
        let e = same_selection(&a, &far, 2, 0.05).unwrap_err();
        assert!(e.contains("pixel 1"), "{e}");
        assert!(same_selection(&a, &a, 2, 0.0).is_ok());
        assert!(same_selection(&a, &a[..3], 2, 0.0).is_err());
    }
}
