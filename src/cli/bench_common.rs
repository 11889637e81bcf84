//! What the two search benchmarks share (`iscp bench` and `iscp bench --model`): the machine's
//! line for their figures, the searches they time, and how two runs of the same searches agree.

use iscp_engine::agreement::compare;
use iscp_engine::canvas::canvas_image;
use iscp_engine::data::{Dataset, Split};
use iscp_engine::pattern::{binarize, pattern_k, Evaluator};
use iscp_engine::search::{SearchConfig, SearchJob, SearchOutcome};

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Prints the machine's line: CPU, logical cores, libtorch threads and the device measured.
pub fn print_machine(device_name: &str) {
    println!(
        "machine: {} ({} logical cores), libtorch threads {}, device {}",
        cpu_model(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        tch::get_num_threads(),
        device_name
    );
}

/// The search for `class` on the canvas of test image `index` at `alpha`, seeded by the class:
/// its pool is the search split's images of the other classes.
pub fn canvas_job(
    test: &Dataset,
    labels: &[i64],
    split: &Split,
    class: i64,
    index: i64,
    alpha: f64,
) -> anyhow::Result<SearchJob> {
    Ok(SearchJob {
        target: class,
        canvas: canvas_image(test, index)?,
        pool: split.non_target(labels, class),
        cfg: SearchConfig {
            alpha,
            seed: class as u64,
            ..Default::default()
        },
    })
}

/// How two runs of the same searches agree: (lowest top-1% Jaccard, lowest top-5% Jaccard, largest
/// PW difference at those sizes). Floats differ across batch shapes and CPUs, so what the masks
/// select and reach is compared, not their raw values.
pub fn agreement(
    eval: &Evaluator,
    jobs: &[SearchJob],
    a: &[iscp_engine::Result<SearchOutcome>],
    b: &[iscp_engine::Result<SearchOutcome>],
) -> anyhow::Result<(f64, f64, f64)> {
    let sizes = [0.01, 0.05];
    let (j1, j5) = selections(a, b)?;
    let (pa, pb) = (
        pw_table(eval, jobs, a, &sizes)?,
        pw_table(eval, jobs, b, &sizes)?,
    );
    Ok((j1, j5, largest_pw_difference(&pa, &pb)))
}

/// The lowest top-1% and top-5% Jaccard indices between the masks of `a` and `b`, search by search.
pub fn selections(
    a: &[iscp_engine::Result<SearchOutcome>],
    b: &[iscp_engine::Result<SearchOutcome>],
) -> anyhow::Result<(f64, f64)> {
    let (mut j1, mut j5) = (1f64, 1f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (outcome(x)?, outcome(y)?);
        let cmp = compare(&x.mask, &y.mask, &[0.01, 0.05], None)?;
        j1 = j1.min(cmp[0].jaccard);
        j5 = j5.min(cmp[1].jaccard);
    }
    Ok((j1, j5))
}

fn outcome(r: &iscp_engine::Result<SearchOutcome>) -> anyhow::Result<&SearchOutcome> {
    r.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

/// PW (on the full test set, through `eval`'s model) of each search's mask at each of `sizes`:
/// `[size][search]`, NaN for a class the model never gets right.
pub fn pw_table(
    eval: &Evaluator,
    jobs: &[SearchJob],
    outcomes: &[iscp_engine::Result<SearchOutcome>],
    sizes: &[f64],
) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut table = vec![Vec::with_capacity(jobs.len()); sizes.len()];
    for (job, out) in jobs.iter().zip(outcomes) {
        let mask = &outcome(out)?.mask;
        let bins: Vec<Vec<f32>> = sizes
            .iter()
            .map(|&s| binarize(mask, pattern_k(s, mask.len())))
            .collect();
        let patterns: Vec<_> = bins.iter().map(|b| (&job.canvas, b.as_slice())).collect();
        for (row, r) in table
            .iter_mut()
            .zip(eval.evaluate_many(job.target, &patterns)?)
        {
            row.push(r.pw);
        }
    }
    Ok(table)
}

/// The largest |PW(a) − PW(b)| of one search at one size (both NaN: they agree).
pub fn largest_pw_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .filter(|(x, y)| !(x.is_nan() && y.is_nan()))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Two sets of the same searches' PW at one size, paired search by search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedPw {
    pub mean_a: f64,
    pub mean_b: f64,
    /// Mean of PW(b) − PW(a) over the searches.
    pub difference: f64,
    /// Its standard error (the paired differences' sample standard deviation over √n).
    pub standard_error: f64,
    pub n: usize,
}

/// `b` against `a` at each size (`[size][search]` tables), over the searches where both have a PW.
/// With a handful of searches the mean moves with each search's path: the standard error says how
/// far a mean difference is the arithmetic's and how far chance's.
pub fn paired_pw(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<PairedPw> {
    a.iter()
        .zip(b)
        .map(|(ra, rb)| {
            let pairs: Vec<(f64, f64)> = ra
                .iter()
                .zip(rb)
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(&x, &y)| (x, y))
                .collect();
            let n = pairs.len();
            let mean =
                |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n.max(1) as f64;
            let difference = mean(&|p| p.1 - p.0);
            let var = pairs
                .iter()
                .map(|p| (p.1 - p.0 - difference).powi(2))
                .sum::<f64>()
                / (n.max(2) - 1) as f64;
            PairedPw {
                mean_a: mean(&|p| p.0),
                mean_b: mean(&|p| p.1),
                difference,
                standard_error: (var / n.max(1) as f64).sqrt(),
                n,
            }
        })
        .collect()
}

/// One line per comparison: both sides' mean PW per size and the paired difference ± its standard
/// error, with the largest |difference| of the means.
pub fn describe_paired(a: &str, b: &str, pairs: &[PairedPw]) -> String {
    let join = |f: &dyn Fn(&PairedPw) -> String| -> String {
        pairs.iter().map(f).collect::<Vec<_>>().join(" / ")
    };
    let worst = pairs.iter().map(|p| p.difference.abs()).fold(0.0, f64::max);
    format!(
        "mean PW at 1/2/3/5/10% over {} searches: {a} {}, {b} {}; {b} − {a} {} (± standard \
         error); largest |mean difference| {worst:.4}",
        pairs.first().map_or(0, |p| p.n),
        join(&|p| format!("{:.3}", p.mean_a)),
        join(&|p| format!("{:.3}", p.mean_b)),
        join(&|p| format!("{:+.4} ± {:.4}", p.difference, p.standard_error)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_differences_and_their_standard_error() {
        // One size, four searches: b − a = 0.1, 0.3, −0.1, 0.1 → mean 0.1, sd √(0.08/3).
        let a = vec![vec![0.2, 0.4, 0.5, f64::NAN, 0.1]];
        let b = vec![vec![0.3, 0.7, 0.4, 0.9, 0.2]];
        let p = paired_pw(&a, &b)[0];
        assert_eq!(p.n, 4, "the search without a PW on one side is left out");
        assert!((p.difference - 0.1).abs() < 1e-12);
        assert!((p.mean_a - 0.3).abs() < 1e-12 && (p.mean_b - 0.4).abs() < 1e-12);
        let se = (0.08f64 / 3.0).sqrt() / 2.0;
        assert!(
            (p.standard_error - se).abs() < 1e-12,
            "{}",
            p.standard_error
        );
        assert!((largest_pw_difference(&a, &b) - 0.3).abs() < 1e-12);
        let line = describe_paired("fp32", "bf16", &[p]);
        assert!(
            line.contains("over 4 searches") && line.contains("+0.1000 ± 0.0816"),
            "{line}"
        );
    }
}
