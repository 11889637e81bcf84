//! What the two search benchmarks share (`iscp bench` and `iscp bench --model`): the CPU's name
//! for their figures, and how two runs of the same searches agree.

use iscp_engine::agreement::compare;
use iscp_engine::pattern::Evaluator;
use iscp_engine::search::{SearchJob, SearchOutcome};

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

/// How two runs of the same searches agree: (lowest top-1% Jaccard, lowest top-5% Jaccard, largest
/// PW difference at those sizes). Floats differ across batch shapes and CPUs, so what the masks
/// select and reach is compared, not their raw values.
pub fn agreement(
    eval: &Evaluator,
    jobs: &[SearchJob],
    a: &[iscp_engine::Result<SearchOutcome>],
    b: &[iscp_engine::Result<SearchOutcome>],
) -> anyhow::Result<(f64, f64, f64)> {
    let (mut j1, mut j5, mut worst) = (1f64, 1f64, 0f64);
    for ((x, y), job) in a.iter().zip(b).zip(jobs) {
        let x = x.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let y = y.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let cmp = compare(
            &x.mask,
            &y.mask,
            &[0.01, 0.05],
            Some((eval, job.target, &job.canvas)),
        )?;
        j1 = j1.min(cmp[0].jaccard);
        j5 = j5.min(cmp[1].jaccard);
        for c in &cmp {
            worst = worst.max(c.pw_difference.unwrap_or(0.0));
        }
    }
    Ok((j1, j5, worst))
}
