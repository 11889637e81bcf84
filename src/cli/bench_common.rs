//! What the two search benchmarks share (`iscp bench` and `iscp bench --model`): the machine's
//! line for their figures, the searches they time, and how two runs of the same searches agree.

use iscp_engine::agreement::compare;
use iscp_engine::canvas::canvas_image;
use iscp_engine::data::{Dataset, Split};
use iscp_engine::pattern::Evaluator;
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
