//! Detection quality of a backdoor detector over a population of models: AUROC, its stratified bootstrap interval, TPR at a fixed FPR, threshold calibration on held-out clean models, ROC points and a seeded held-out split.
//!
//! Conventions shared by every function here:
//!
//! * A higher score means "more suspicious". A NaN score means the detector
//!   failed on that model; it is treated as the lowest possible score,
//!   `f64::NEG_INFINITY` (so it ties with a real `-inf` and is never above
//!   anything). `-0.0` is treated as `0.0`.
//! * Threshold rule: a model is **flagged when `score >= t`** (after the NaN
//!   mapping above). Both [`calibrate`] and [`tpr_at_fpr`] return the
//!   **smallest** `f64` threshold `t` whose false-positive share is
//!   `<= max_fpr`. Because the share of scores `>= t` only changes at score
//!   values, that smallest `t` is either `-inf` (when flagging everything is
//!   allowed) or the next representable `f64` above some score
//!   (`f64::next_up`). A share `k / n` is compared with `max_fpr` exactly as
//!   `k as f64 / n as f64 <= max_fpr`, the same arithmetic [`rates`] uses.
//! * A rate whose class is empty is NaN in [`rates`]; functions that need both
//!   classes return `None` (or an empty `Vec`) instead.

/// One model: the detector's score and whether the model is really poisoned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub poisoned: bool,
}

/// A closed interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The score as every metric here sees it: NaN becomes `-inf`, `-0.0` becomes `0.0`.
fn norm(x: f64) -> f64 {
    if x.is_nan() {
        f64::NEG_INFINITY
    } else if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// Normalised scores of the poisoned and of the clean models.
fn split_classes(s: &[Scored]) -> (Vec<f64>, Vec<f64>) {
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    for m in s {
        if m.poisoned {
            pos.push(norm(m.score));
        } else {
            neg.push(norm(m.score));
        }
    }
    (pos, neg)
}

/// Mann–Whitney AUROC of normalised positive scores against normalised,
/// ascending-sorted negative scores; both must be non-empty.
fn auroc_sorted_neg(pos: &[f64], neg_sorted: &[f64]) -> f64 {
    // Count in half-units so ties (worth 1/2) stay exact integers.
    let mut twice: u64 = 0;
    for &p in pos {
        let below = neg_sorted.partition_point(|&x| x < p);
        let at_or_below = neg_sorted.partition_point(|&x| x <= p);
        twice += (2 * below + (at_or_below - below)) as u64;
    }
    twice as f64 / (2.0 * pos.len() as f64 * neg_sorted.len() as f64)
}

/// Area under the ROC curve by Mann–Whitney: the share of (poisoned, clean)
/// pairs where the poisoned model scores higher, ties counting 1/2.
/// NaN scores count as `-inf`. `None` when either class is empty.
pub fn auroc(s: &[Scored]) -> Option<f64> {
    let (pos, mut neg) = split_classes(s);
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    neg.sort_by(f64::total_cmp);
    Some(auroc_sorted_neg(&pos, &neg))
}

/// splitmix64: a tiny, deterministic, well-mixed 64-bit generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`) by multiply-shift; the bias is at
    /// most `n / 2^64`, negligible here.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Percentile `p` (in `0..=1`) of an ascending, non-empty slice by linear
/// interpolation between closest ranks (the "type 7" rule of R / NumPy's
/// default): position `h = (len - 1) * p`.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let last = sorted.len() - 1;
    let h = last as f64 * p;
    let lo = (h.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    let frac = h - lo as f64;
    let v = sorted[lo] + frac * (sorted[hi] - sorted[lo]);
    v.clamp(sorted[lo], sorted[hi])
}

/// Stratified bootstrap 95% percentile interval of [`auroc`].
///
/// Each of `resamples` rounds draws the poisoned scores with replacement to
/// their own count and the clean scores with replacement to theirs, and
/// computes the AUROC of that resample. The interval is the 2.5th and 97.5th
/// percentiles of those AUROCs, by linear interpolation (see `percentile`:
/// position `(resamples - 1) * p` in the sorted AUROCs). Deterministic for a
/// given `seed` (splitmix64). A percentile interval need not contain the
/// point estimate, though it usually does.
///
/// `None` when either class is empty or `resamples == 0`.
pub fn auroc_interval(s: &[Scored], resamples: usize, seed: u64) -> Option<Interval> {
    let (pos, neg) = split_classes(s);
    if pos.is_empty() || neg.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut boot_pos = vec![0.0; pos.len()];
    let mut boot_neg = vec![0.0; neg.len()];
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for x in &mut boot_pos {
            *x = pos[rng.below(pos.len())];
        }
        for x in &mut boot_neg {
            *x = neg[rng.below(neg.len())];
        }
        boot_neg.sort_by(f64::total_cmp);
        stats.push(auroc_sorted_neg(&boot_pos, &boot_neg));
    }
    stats.sort_by(f64::total_cmp);
    Some(Interval {
        low: percentile(&stats, 0.025),
        high: percentile(&stats, 0.975),
    })
}

/// The highest TPR over thresholds `t` (flag when `score >= t`) whose FPR is
/// `<= max_fpr`, as `(tpr, t)`.
///
/// The threshold returned is the smallest `f64` `t` with FPR `<= max_fpr`,
/// i.e. [`calibrate`] applied to the clean models' scores; since TPR never
/// rises with `t`, it also achieves the highest TPR. Ties are never split: a
/// threshold flags every model with a given score or none of them. Typically
/// `t` is the next `f64` above the highest clean score that must stay
/// unflagged, or `-inf` when `max_fpr >= 1` (flag everything).
///
/// `None` when either class is empty, `max_fpr` is NaN or negative, or no
/// threshold qualifies (the clean score that must stay unflagged is `+inf`).
pub fn tpr_at_fpr(s: &[Scored], max_fpr: f64) -> Option<(f64, f64)> {
    let neg: Vec<f64> = s.iter().filter(|m| !m.poisoned).map(|m| m.score).collect();
    if neg.len() == s.len() {
        return None;
    }
    let t = calibrate(&neg, max_fpr)?;
    let (tpr, _) = rates(s, |x| x >= t);
    Some((tpr, t))
}

/// A threshold from held-out clean models: the smallest `f64` `t` such that
/// the share of `clean_scores` with `score >= t` is `<= max_fpr` (NaN scores
/// count as `-inf`).
///
/// With the clean scores sorted descending as `c[0] >= c[1] >= ...` and `k`
/// the largest count with `k / n <= max_fpr`, that is `-inf` when `k == n`
/// and otherwise `c[k].next_up()`, the next representable `f64` above
/// `c[k]` (so `c[k]` itself, and every score tied with it, stays unflagged).
/// E.g. 10 clean scores at 5% allow `k = 0`: `t` is just above the maximum.
///
/// `None` when `clean_scores` is empty, `max_fpr` is NaN or negative, or
/// `c[k]` is `+inf` (no finite threshold leaves it unflagged).
pub fn calibrate(clean_scores: &[f64], max_fpr: f64) -> Option<f64> {
    let n = clean_scores.len();
    if n == 0 || max_fpr.is_nan() {
        return None;
    }
    let k = (0..=n).rev().find(|&k| k as f64 / n as f64 <= max_fpr)?;
    above_all_but(clean_scores, k)
}

/// A threshold for models not seen yet, from held-out clean models (split conformal): new
/// clean models exchangeable with the `n` held-out ones pass it with probability at most
/// `max_fpr` on average.
///
/// A new clean score and the `n` held-out ones rank in a uniformly random order, so a new score
/// lands above the (k+1)-th highest held-out score with probability (k + 1) / (n + 1). This
/// allows the largest `k` with (k + 1) / (n + 1) <= `max_fpr` held-out scores above the
/// threshold ([`calibrate`] allows k / n, which expects up to about one more false positive).
/// With fewer than 1 / `max_fpr` - 1 held-out models (19 at 5%) no `k` qualifies: the threshold
/// goes just above the highest held-out score, the strictest the data allows, and a new clean
/// model still passes it with probability 1 / (n + 1) (see [`held_out_fpr_bound`]).
///
/// `None` as for [`calibrate`].
pub fn calibrate_held_out(clean_scores: &[f64], max_fpr: f64) -> Option<f64> {
    let n = clean_scores.len();
    if n == 0 || max_fpr.is_nan() || max_fpr < 0.0 {
        return None;
    }
    above_all_but(clean_scores, conformal_k(n, max_fpr))
}

/// The held-out clean scores a split-conformal threshold from `n` of them may leave above it: the
/// largest `k` with (k + 1) / (n + 1) <= `max_fpr`, else 0.
fn conformal_k(n: usize, max_fpr: f64) -> usize {
    (0..=n)
        .rev()
        .find(|&k| (k + 1) as f64 / (n + 1) as f64 <= max_fpr)
        .unwrap_or(0)
}

/// The expected FPR on new clean models of [`calibrate_held_out`]'s threshold from `n` held-out
/// ones: (k + 1) / (n + 1) for its `k` (1 when `n` is 0).
pub fn held_out_fpr_bound(n: usize, max_fpr: f64) -> f64 {
    let k = conformal_k(n, max_fpr);
    ((k + 1) as f64 / (n + 1) as f64).min(1.0)
}

/// The smallest `f64` that leaves all but the `k` highest of `clean_scores` (and every score tied
/// with the highest one kept) unflagged: `-inf` when `k` is all of them, `None` when a kept score
/// is `+inf`.
fn above_all_but(clean_scores: &[f64], k: usize) -> Option<f64> {
    if k >= clean_scores.len() {
        return Some(f64::NEG_INFINITY);
    }
    let mut sorted: Vec<f64> = clean_scores.iter().map(|&x| norm(x)).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let keep = sorted[k];
    if keep == f64::INFINITY {
        return None;
    }
    Some(keep.next_up())
}

/// `(TPR, FPR)` of a flagging rule. The rule sees each score after the NaN
/// mapping (NaN → `-inf`). A rate whose class is empty is NaN.
pub fn rates(s: &[Scored], flag: impl Fn(f64) -> bool) -> (f64, f64) {
    let (mut tp, mut pos, mut fp, mut neg) = (0usize, 0usize, 0usize, 0usize);
    for m in s {
        let flagged = usize::from(flag(norm(m.score)));
        if m.poisoned {
            pos += 1;
            tp += flagged;
        } else {
            neg += 1;
            fp += flagged;
        }
    }
    (ratio(tp, pos), ratio(fp, neg))
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// ROC curve points `(FPR, TPR)` for drawing: `(0, 0)` first, then one point
/// per distinct score taken as the threshold (flag when `score >= t`), from
/// the highest score down, ending at `(1, 1)`. NaN scores count as `-inf`.
/// Empty when either class is empty.
pub fn roc_points(s: &[Scored]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, bool)> = s.iter().map(|m| (norm(m.score), m.poisoned)).collect();
    let pos = v.iter().filter(|m| m.1).count();
    let neg = v.len() - pos;
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < v.len() {
        let t = v[i].0;
        while i < v.len() && v[i].0 == t {
            if v[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        out.push((fp as f64 / neg as f64, tp as f64 / pos as f64));
    }
    out
}

/// A seeded choice of which of `n` clean models are held out for calibration
/// (`true` = held out). `round(share * n)` of them (`share` clamped to
/// `0..=1`, NaN as 0), but when `n >= 2` at least 1 if `share > 0` and never
/// all `n` (at most `n - 1`). Deterministic for a given `seed` (partial
/// Fisher–Yates with splitmix64).
pub fn split_heldout(n: usize, share: f64, seed: u64) -> Vec<bool> {
    let share = if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    };
    let mut k = ((share * n as f64).round() as usize).min(n);
    if n >= 2 {
        if share > 0.0 {
            k = k.max(1);
        }
        k = k.min(n - 1);
    }
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64(seed);
    for i in 0..k {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    let mut out = vec![false; n];
    for &i in &idx[..k] {
        out[i] = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(pos: &[f64], neg: &[f64]) -> Vec<Scored> {
        let p = pos.iter().map(|&score| Scored {
            score,
            poisoned: true,
        });
        let n = neg.iter().map(|&score| Scored {
            score,
            poisoned: false,
        });
        p.chain(n).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// pos [0.9, 0.8, 0.4], neg [0.7, 0.3, 0.2, 0.1].
    fn fixture() -> Vec<Scored> {
        models(&[0.9, 0.8, 0.4], &[0.7, 0.3, 0.2, 0.1])
    }

    #[test]
    fn auroc_by_hand() {
        // 0.9 beats all 4 negatives, 0.8 beats all 4, 0.4 beats 0.3, 0.2, 0.1
        // (3) but not 0.7: 4 + 4 + 3 = 11 of 3 * 4 = 12 pairs.
        assert!(close(auroc(&fixture()).unwrap(), 11.0 / 12.0));
    }

    #[test]
    fn auroc_ties_count_half() {
        // pos [0.5, 0.5], neg [0.5, 0.2]: each positive beats 0.2 (1) and ties
        // 0.5 (1/2) -> 1.5 each, 3 of 4 pairs = 0.75.
        assert_eq!(auroc(&models(&[0.5, 0.5], &[0.5, 0.2])), Some(0.75));
        // All tied: every pair is worth 1/2.
        assert_eq!(auroc(&models(&[1.0, 1.0], &[1.0])), Some(0.5));
        // -0.0 and 0.0 are the same score: a tie.
        assert_eq!(auroc(&models(&[-0.0], &[0.0])), Some(0.5));
    }

    #[test]
    fn nan_counts_as_lowest() {
        // pos [NaN, 0.9], neg [0.1, NaN]: NaN(pos) loses to 0.1 (0), ties
        // NaN(neg) (1/2); 0.9 beats both (2): 2.5 / 4 = 0.625.
        assert_eq!(
            auroc(&models(&[f64::NAN, 0.9], &[0.1, f64::NAN])),
            Some(0.625)
        );
        // A failed poisoned model loses even to a hugely negative clean one,
        // and ties a clean -inf.
        assert_eq!(auroc(&models(&[f64::NAN], &[-1e300])), Some(0.0));
        assert_eq!(auroc(&models(&[f64::NAN], &[f64::NEG_INFINITY])), Some(0.5));
        // Rules and thresholds see NaN as -inf: never flagged by a finite t.
        let s = models(&[f64::NAN, 0.9], &[f64::NAN, 0.1]);
        assert_eq!(rates(&s, |x| x >= -1e300), (0.5, 0.5));
        assert_eq!(rates(&s, |x| x == f64::NEG_INFINITY), (0.5, 0.5));
        // Clean [NaN, NaN] at 0%: the one value to stay below is -inf, so t is
        // the next f64 above it, -f64::MAX.
        assert_eq!(calibrate(&[f64::NAN, f64::NAN], 0.0), Some(-f64::MAX));
        // The NaN positive is never flagged; 0.9 is.
        assert_eq!(tpr_at_fpr(&s, 0.0), Some((0.5, 0.1f64.next_up())));
    }

    #[test]
    fn empty_class_is_none() {
        let only_pos = models(&[0.9, 0.1], &[]);
        let only_neg = models(&[], &[0.9, 0.1]);
        for s in [&only_pos[..], &only_neg[..], &[][..]] {
            assert_eq!(auroc(s), None);
            assert_eq!(auroc_interval(s, 100, 1), None);
            assert_eq!(tpr_at_fpr(s, 0.05), None);
            assert!(roc_points(s).is_empty());
        }
        assert_eq!(calibrate(&[], 0.05), None);
        assert_eq!(auroc_interval(&fixture(), 0, 1), None);
        let (tpr, fpr) = rates(&only_pos, |x| x > 0.5);
        assert_eq!(tpr, 0.5);
        assert!(fpr.is_nan());
    }

    #[test]
    fn perfect_separation() {
        let s = models(&[0.9, 0.8], &[0.1, 0.2, 0.3]);
        assert_eq!(auroc(&s), Some(1.0));
        // Every resample keeps every positive above every negative.
        assert_eq!(
            auroc_interval(&s, 500, 7),
            Some(Interval {
                low: 1.0,
                high: 1.0
            })
        );
        // Even at 0% FPR everything poisoned is caught, just above 0.3.
        assert_eq!(tpr_at_fpr(&s, 0.0), Some((1.0, 0.3f64.next_up())));
    }

    /// 10 poisoned and 10 clean models with overlapping scores.
    fn overlapping() -> Vec<Scored> {
        models(
            &[0.95, 0.9, 0.85, 0.7, 0.65, 0.6, 0.45, 0.4, 0.3, 0.2],
            &[0.8, 0.75, 0.55, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05, 0.0],
        )
    }

    #[test]
    fn interval_contains_estimate() {
        let s = overlapping();
        // Wins per positive against the 10 negatives:
        // 0.95: 10, 0.9: 10, 0.85: 10, 0.7: 8, 0.65: 8, 0.6: 8, 0.45: 6,
        // 0.4: 6, 0.3: 5, 0.2: 4 -> 75 of 100.
        let a = auroc(&s).unwrap();
        assert!(close(a, 0.75));
        let iv = auroc_interval(&s, 2000, 42).unwrap();
        assert!(iv.low < a && a < iv.high, "{iv:?} vs {a}");
        assert!(iv.low >= 0.0 && iv.high <= 1.0);
        // Loose sanity bounds for a 10 v 10 sample.
        assert!(iv.low > 0.4 && iv.low < 0.7, "{iv:?}");
        assert!(iv.high > 0.85, "{iv:?}");
        // The 11/12 fixture too.
        let s = fixture();
        let a = auroc(&s).unwrap();
        let iv = auroc_interval(&s, 2000, 3).unwrap();
        assert!(iv.low < a && a < iv.high, "{iv:?} vs {a}");
    }

    #[test]
    fn interval_is_deterministic() {
        let s = overlapping();
        let a = auroc_interval(&s, 300, 12345).unwrap();
        let b = auroc_interval(&s, 300, 12345).unwrap();
        assert_eq!(a, b);
        // Another seed gives a (slightly) different interval.
        let c = auroc_interval(&s, 300, 54321).unwrap();
        assert!(a != c, "{a:?} {c:?}");
    }

    #[test]
    fn percentile_interpolates() {
        let v = [0.0, 1.0, 2.0, 3.0, 4.0];
        // h = 4 * 0.025 = 0.1 -> 0.1; h = 4 * 0.975 = 3.9 -> 3.9.
        assert!(close(percentile(&v, 0.025), 0.1));
        assert!(close(percentile(&v, 0.975), 3.9));
        assert_eq!(percentile(&[5.0], 0.975), 5.0);
    }

    /// 19 clean models at 0.01..=0.19 plus one clean outlier at 0.85;
    /// poisoned [0.95, 0.9, 0.8, 0.7, 0.6, 0.15].
    fn twenty_negatives() -> Vec<Scored> {
        let mut neg: Vec<f64> = (1..=19).map(|i| f64::from(i) / 100.0).collect();
        neg.push(0.85);
        models(&[0.95, 0.9, 0.8, 0.7, 0.6, 0.15], &neg)
    }

    #[test]
    fn tpr_at_fpr_by_hand() {
        let s = twenty_negatives();
        // 5% of 20 negatives allows exactly one false positive: the outlier
        // 0.85 may be flagged, 0.19 must not be -> t = next f64 above 0.19.
        // Flagged positives: 0.95, 0.9, 0.8, 0.7, 0.6 (not 0.15) -> 5/6.
        let (tpr, t) = tpr_at_fpr(&s, 0.05).unwrap();
        assert_eq!(t, 0.19f64.next_up());
        assert!(close(tpr, 5.0 / 6.0));
        assert_eq!(rates(&s, |x| x >= t), (tpr, 0.05));
        // Any lower threshold at a score would break the FPR bound.
        assert!(rates(&s, |x| x >= 0.19).1 > 0.05);
        // 0%: nothing clean flagged -> just above 0.85; only 0.95, 0.9 -> 2/6.
        let (tpr, t) = tpr_at_fpr(&s, 0.0).unwrap();
        assert_eq!(t, 0.85f64.next_up());
        assert!(close(tpr, 2.0 / 6.0));
        // 4.9% still allows none.
        assert_eq!(tpr_at_fpr(&s, 0.049).unwrap().1, 0.85f64.next_up());
        // 10% allows two (0.85, 0.19): t just above 0.18, still 5/6.
        let (tpr, t) = tpr_at_fpr(&s, 0.10).unwrap();
        assert_eq!(t, 0.18f64.next_up());
        assert!(close(tpr, 5.0 / 6.0));
        // 100%: flag everything.
        assert_eq!(tpr_at_fpr(&s, 1.0), Some((1.0, f64::NEG_INFINITY)));
        // Bad bounds.
        assert_eq!(tpr_at_fpr(&s, -0.1), None);
        assert_eq!(tpr_at_fpr(&s, f64::NAN), None);
    }

    #[test]
    fn tpr_at_fpr_ties_not_split() {
        // Clean [0.5, 0.5, 0.1, 0.1], poisoned [0.5, 0.3]. At 25% one false
        // positive is allowed, but the two clean 0.5s tie: flagging one flags
        // both (50%), so t goes just above 0.5. That leaves the poisoned 0.5
        // and 0.3 unflagged too: TPR = 0.
        let s = models(&[0.5, 0.3], &[0.5, 0.5, 0.1, 0.1]);
        assert_eq!(tpr_at_fpr(&s, 0.25), Some((0.0, 0.5f64.next_up())));
        // At 50% both 0.5s may be flagged: t just above 0.1 -> TPR 1.
        assert_eq!(tpr_at_fpr(&s, 0.5), Some((1.0, 0.1f64.next_up())));
    }

    #[test]
    fn calibrate_fixtures() {
        let clean: Vec<f64> = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        // 10 scores at 5%: 1/10 > 5%, so none may be >= t: just above the max.
        let t = calibrate(&clean, 0.05).unwrap();
        assert_eq!(t, 1.0f64.next_up());
        assert_eq!(t, f64::from_bits(1.0f64.to_bits() + 1));
        // 10%: one may be flagged (1.0), 0.9 must not: just above 0.9.
        assert_eq!(calibrate(&clean, 0.10), Some(0.9f64.next_up()));
        // 25%: floor -> two may be flagged: just above 0.8.
        assert_eq!(calibrate(&clean, 0.25), Some(0.8f64.next_up()));
        // The share >= t matches max_fpr rounding exactly: 3/10 <= 0.3.
        assert_eq!(calibrate(&clean, 0.3), Some(0.7f64.next_up()));
        // 100%: everything may be flagged.
        assert_eq!(calibrate(&clean, 1.0), Some(f64::NEG_INFINITY));
        // Order does not matter.
        let mut rev = clean.clone();
        rev.reverse();
        assert_eq!(calibrate(&rev, 0.10), calibrate(&clean, 0.10));
        // Negative scores: just above -1 is a bit less negative.
        let t = calibrate(&[-3.0, -2.0, -1.0], 0.0).unwrap();
        assert!(t > -1.0 && t < -0.999_999);
        assert_eq!(t, f64::from_bits((-1.0f64).to_bits() - 1));
        // Zero (either sign) as the max: smallest positive subnormal.
        assert_eq!(calibrate(&[0.0, -1.0], 0.0), Some(f64::from_bits(1)));
        assert_eq!(calibrate(&[-0.0, -1.0], 0.0), Some(f64::from_bits(1)));
        // Ties: [0.7, 0.7, 0.2] at 34% allows one, but the two 0.7s tie, so
        // both must stay unflagged: just above 0.7.
        assert_eq!(calibrate(&[0.7, 0.7, 0.2], 0.34), Some(0.7f64.next_up()));
        // f64::MAX as the max: t = +inf still leaves it unflagged.
        assert_eq!(calibrate(&[f64::MAX], 0.0), Some(f64::INFINITY));
        // +inf can never be left unflagged.
        assert_eq!(calibrate(&[f64::INFINITY, 0.0], 0.0), None);
        assert_eq!(
            calibrate(&[f64::INFINITY, 0.0], 0.5),
            Some(0.0f64.next_up())
        );
        // Bad bounds.
        assert_eq!(calibrate(&clean, -0.01), None);
        assert_eq!(calibrate(&clean, f64::NAN), None);
    }

    #[test]
    fn calibrated_threshold_meets_bound() {
        let clean: Vec<f64> = (0..37).map(|i| (f64::from(i) * 0.37).sin()).collect();
        for &fpr in &[0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 0.99] {
            let t = calibrate(&clean, fpr).unwrap();
            let share = clean.iter().filter(|&&x| x >= t).count() as f64 / 37.0;
            assert!(share <= fpr);
            // Smallest: the previous f64 breaks the bound.
            let below = t.next_down();
            let share = clean.iter().filter(|&&x| x >= below).count() as f64 / 37.0;
            assert!(share > fpr);
        }
    }

    #[test]
    fn held_out_threshold_is_conformal() {
        let clean: Vec<f64> = (1..=40).map(f64::from).collect();
        // 40 held out at 5%: (k + 1) / 41 <= 0.05 allows k = 1 (2/41), where calibrate's
        // k / n allows 2 (2/40): one more clean score above.
        assert_eq!(calibrate_held_out(&clean, 0.05), Some(39.0f64.next_up()));
        assert_eq!(calibrate(&clean, 0.05), Some(38.0f64.next_up()));
        assert!((held_out_fpr_bound(40, 0.05) - 2.0 / 41.0).abs() < 1e-12);
        // 20 held out: (k + 1) / 21 <= 0.05 allows none; calibrate allows one (1/20).
        let twenty = &clean[..20];
        assert_eq!(calibrate_held_out(twenty, 0.05), Some(20.0f64.next_up()));
        assert_eq!(calibrate(twenty, 0.05), Some(19.0f64.next_up()));
        assert!((held_out_fpr_bound(20, 0.05) - 1.0 / 21.0).abs() < 1e-12);
        // 15 held out: nothing qualifies, the strictest threshold, expected FPR 1/16 > 5%.
        assert_eq!(
            calibrate_held_out(&clean[..15], 0.05),
            Some(15.0f64.next_up())
        );
        assert!(held_out_fpr_bound(15, 0.05) > 0.05);
        assert!(held_out_fpr_bound(19, 0.05) <= 0.05);
        // All may pass at 100%; nothing to calibrate on; bad bounds.
        assert_eq!(calibrate_held_out(twenty, 1.0), Some(f64::NEG_INFINITY));
        assert_eq!(calibrate_held_out(&[], 0.05), None);
        assert_eq!(calibrate_held_out(twenty, f64::NAN), None);
        assert_eq!(calibrate_held_out(twenty, -0.1), None);
    }

    #[test]
    fn held_out_threshold_keeps_its_promise_on_new_models() {
        // Many draws of 20 held-out and 200 new clean scores from one distribution: the share of
        // new ones at or above the threshold averages 1/21, under 5%; calibrate's averages 2/21.
        let mut rng = SplitMix64(7);
        let (mut conformal, mut plain, draws) = (0.0, 0.0, 2000);
        for _ in 0..draws {
            let held: Vec<f64> = (0..20).map(|_| rng.below(1 << 30) as f64).collect();
            let new: Vec<f64> = (0..200).map(|_| rng.below(1 << 30) as f64).collect();
            let share = |t: f64| new.iter().filter(|&&x| x >= t).count() as f64 / 200.0;
            conformal += share(calibrate_held_out(&held, 0.05).unwrap()) / f64::from(draws);
            plain += share(calibrate(&held, 0.05).unwrap()) / f64::from(draws);
        }
        assert!(conformal < 0.05 && conformal > 0.03, "{conformal}");
        assert!(plain > 0.07, "{plain}");
    }

    #[test]
    fn rates_by_hand() {
        // Flag >= 0.5 on the fixture: positives 0.9, 0.8 (2/3); negatives 0.7 (1/4).
        assert_eq!(rates(&fixture(), |x| x >= 0.5), (2.0 / 3.0, 0.25));
        assert_eq!(rates(&fixture(), |_| true), (1.0, 1.0));
        assert_eq!(rates(&fixture(), |_| false), (0.0, 0.0));
    }

    #[test]
    fn roc_points_by_hand() {
        // Descending: 0.9P 0.8P 0.7N 0.4P 0.3N 0.2N 0.1N.
        let pts = roc_points(&fixture());
        let want = [
            (0.0, 0.0),
            (0.0, 1.0 / 3.0),
            (0.0, 2.0 / 3.0),
            (0.25, 2.0 / 3.0),
            (0.25, 1.0),
            (0.5, 1.0),
            (0.75, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(pts.len(), want.len());
        for (p, w) in pts.iter().zip(want) {
            assert!(close(p.0, w.0) && close(p.1, w.1), "{pts:?}");
        }
        // Ties make one diagonal step: pos [0.5, 0.5], neg [0.5, 0.2].
        assert_eq!(
            roc_points(&models(&[0.5, 0.5], &[0.5, 0.2])),
            vec![(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn roc_area_equals_auroc() {
        for s in [
            fixture(),
            overlapping(),
            twenty_negatives(),
            models(&[0.5, 0.5], &[0.5, 0.2]),
        ] {
            let pts = roc_points(&s);
            let area: f64 = pts
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
                .sum();
            assert!(close(area, auroc(&s).unwrap()));
        }
    }

    #[test]
    fn split_heldout_counts() {
        let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
        assert_eq!(count(&split_heldout(10, 0.2, 1)), 2);
        assert_eq!(count(&split_heldout(10, 0.25, 1)), 3); // round(2.5) = 3
        assert_eq!(count(&split_heldout(100, 0.3, 9)), 30);
        // At least one when share > 0 and n >= 2.
        assert_eq!(count(&split_heldout(10, 0.01, 1)), 1);
        assert_eq!(count(&split_heldout(2, 0.01, 1)), 1);
        // Never all when n >= 2.
        assert_eq!(count(&split_heldout(2, 1.0, 1)), 1);
        assert_eq!(count(&split_heldout(10, 0.99, 1)), 9);
        // Nothing when share is 0 (or NaN, or negative).
        assert_eq!(count(&split_heldout(10, 0.0, 1)), 0);
        assert_eq!(count(&split_heldout(10, f64::NAN, 1)), 0);
        assert_eq!(count(&split_heldout(10, -1.0, 1)), 0);
        // Edge sizes.
        assert!(split_heldout(0, 0.5, 1).is_empty());
        assert_eq!(split_heldout(1, 1.0, 1), vec![true]);
        assert_eq!(split_heldout(1, 0.2, 1), vec![false]);
        assert_eq!(split_heldout(7, 0.5, 3).len(), 7);
    }

    #[test]
    fn split_heldout_is_seeded() {
        assert_eq!(split_heldout(50, 0.2, 77), split_heldout(50, 0.2, 77));
        assert_ne!(split_heldout(50, 0.2, 77), split_heldout(50, 0.2, 78));
    }
}
