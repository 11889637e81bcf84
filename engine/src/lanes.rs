//! CPU lanes: a batch of searches split over the cores, one single-threaded batched optimisation per
//! core, instead of one batched optimisation whose every small operation is shared by all cores.
//!
//! A batched search step is a few dozen operations on tensors of a few MB. Spread over two OpenMP
//! threads, each operation pays a fork/join and the threads spin waiting for each other (a fifth of
//! the CPU time in a profile); one lane per core has no such hand-offs. Each search's arithmetic does
//! not depend on which lane or how many threads run it, so the masks are the same (the bench checks).

use crate::model::Model;
use crate::Result;
use std::sync::mpsc;

/// A model shared by the lane threads for the length of one batch.
struct SharedModel<'a>(&'a Model);

// SAFETY: the lanes only run forward and backward passes through the model (`&self` methods, whose
// Rust side is closures over tensor handles with no interior mutability). Its parameters are frozen,
// so no lane writes to them or to their gradients, and libtorch runs independent autograd graphs over
// shared read-only parameters from several threads (as PyTorch's multi-threaded inference does).
// Tensor handles are reference-counted atomically.
unsafe impl Send for SharedModel<'_> {}

/// How many lanes a batch of `jobs` searches gets: one per libtorch intra-op thread on the CPU (at
/// most one per job), one elsewhere.
pub fn lane_count(model: &Model, jobs: usize) -> usize {
    match model.device() {
        tch::Device::Cpu => (tch::get_num_threads().max(1) as usize).min(jobs).max(1),
        _ => 1,
    }
}

/// Splits the jobs over the lanes, longest first onto the least loaded lane (load = steps × batch,
/// what a job adds to its lane's total work). Returns, per lane, the indices of its jobs.
pub fn assign(costs: &[usize], lanes: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(costs[j]));
    let mut load = vec![0usize; lanes];
    let mut out = vec![Vec::new(); lanes];
    for j in order {
        let lane = (0..lanes).min_by_key(|&l| load[l]).unwrap_or(0);
        load[lane] += costs[j];
        out[lane].push(j);
    }
    for lane in &mut out {
        lane.sort_unstable();
    }
    out
}

/// A job the lanes can split: its length in steps, its cost per step, and another handle to it
/// for a lane's thread (the search's job; lanes know nothing else of it).
pub trait LaneJob: Sized + Send {
    /// Steps the job takes.
    fn steps(&self) -> usize;
    /// Images a step takes (its share of a lane's work is steps × this).
    fn batch(&self) -> usize;
    /// Another handle to the same job, for a lane's thread.
    fn shallow(&self) -> Self;
}

/// A batch body: runs some jobs as one batched optimisation, reporting `(step, total)`.
pub type BatchFn<T, J> =
    fn(&Model, &tch::Tensor, &[&J], &mut dyn FnMut(usize, usize)) -> Result<Vec<T>>;

/// Runs `jobs` with `body`, split over `lanes` single-threaded lanes (each a thread of its own),
/// and returns each job's result in order. Progress is the sum of the lanes' steps over the sum of
/// their lengths (a lane is as long as its longest job). libtorch's thread count is restored
/// afterwards.
pub fn run_lanes<T: Send, J: LaneJob>(
    model: &Model,
    images: &tch::Tensor,
    jobs: &[&J],
    lanes: usize,
    body: BatchFn<T, J>,
    progress: &mut dyn FnMut(usize, usize),
) -> Vec<Result<T>> {
    let costs: Vec<usize> = jobs.iter().map(|j| j.steps() * j.batch()).collect();
    let groups = assign(&costs, lanes);
    let lengths: Vec<usize> = groups
        .iter()
        .map(|g| g.iter().map(|&j| jobs[j].steps()).max().unwrap_or(0))
        .collect();
    let total: usize = lengths.iter().sum();
    let threads = tch::get_num_threads();
    let (tx, rx) = mpsc::channel::<(usize, usize)>();
    let mut results: Vec<Option<Result<T>>> = (0..jobs.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .enumerate()
            .map(|(lane, group)| {
                let shared = SharedModel(model);
                let images = images.shallow_clone();
                let own: Vec<J> = group.iter().map(|&j| jobs[j].shallow()).collect();
                let tx = tx.clone();
                s.spawn(move || {
                    let model = shared;
                    tch::set_num_threads(1);
                    let refs: Vec<&J> = own.iter().collect();
                    body(model.0, &images, &refs, &mut |step, _| {
                        let _ = tx.send((lane, step));
                    })
                })
            })
            .collect();
        drop(tx);
        let mut done = vec![0usize; groups.len()];
        for (lane, step) in rx {
            done[lane] = step.min(lengths[lane]);
            progress(done.iter().sum(), total);
        }
        for (group, handle) in groups.iter().zip(handles) {
            match handle.join() {
                Ok(Ok(outs)) => {
                    for (&j, out) in group.iter().zip(outs) {
                        results[j] = Some(Ok(out));
                    }
                }
                Ok(Err(e)) => {
                    for &j in group {
                        results[j] = Some(Err(e.for_each_job("")));
                    }
                }
                Err(_) => {
                    for &j in group {
                        results[j] = Some(Err(crate::EngineError::Invalid(
                            "a search lane panicked".into(),
                        )));
                    }
                }
            }
        }
    });
    // The lanes set libtorch's process-wide default to one thread; threads started later take it.
    tch::set_num_threads(threads);
    results
        .into_iter()
        .map(|r| r.expect("every job belongs to a lane"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::assign;

    #[test]
    fn every_job_lands_in_one_lane_and_loads_balance() {
        let costs = [90, 10, 50, 40, 30, 30, 20, 10];
        let lanes = assign(&costs, 2);
        let mut seen: Vec<usize> = lanes.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..costs.len()).collect::<Vec<_>>());
        let loads: Vec<usize> = lanes
            .iter()
            .map(|l| l.iter().map(|&j| costs[j]).sum())
            .collect();
        assert_eq!(loads.iter().sum::<usize>(), 280);
        assert!(loads.iter().all(|&l| l == 140), "{loads:?}");
        assert!(lanes.iter().all(|l| l.windows(2).all(|w| w[0] < w[1])));
        assert_eq!(
            assign(&costs, 3).iter().filter(|l| !l.is_empty()).count(),
            3
        );
    }
}
