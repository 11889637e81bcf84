//! `iscp plan SPEC`: the unit grid and its estimated cost, without running anything (the data
//! need not be present for Fashion-MNIST, CIFAR-10 or synthetic specs). Its time is measured: each
//! model the plan runs on is timed on the device first (a built-in architecture freshly
//! initialised, a TorchScript file loaded), unless `--guess` asks for the multiply-add estimate.

use super::progress::words::duration;
use super::SpecArgs;
use iscp_sweep::cost::{data_shape, estimate};
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::tables::done_units;
use iscp_sweep::throughputs::{measure_plans, Measured};
use iscp_sweep::units::plan as expand;
use iscp_sweep::units::UnitKind;
use std::collections::HashSet;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Sustained multiply-adds per second of one device, for the time of what is not timed (with
    /// --guess, everything; else models that could not be loaded). Default 25 G, what a batched
    /// small-CNN search reaches on 2 cores of an AMD EPYC.
    #[arg(long, default_value_t = 25e9)]
    pub macs_per_s: f64,
    /// Do not time the models: estimate every kind's time from assumed multiply-adds (a
    /// TorchScript model counted as a ResNet-50) at --macs-per-s. For planning a device you are
    /// not on.
    #[arg(long)]
    pub guess: bool,
    /// The device to time the models on (default: the spec's `run.device`).
    #[arg(long)]
    pub device: Option<String>,
    /// libtorch intra-op threads while timing (default: the spec's `run.threads`, else all cores),
    /// as `iscp run --threads`.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Distinct TorchScript files timed at most; the others are assumed as fast as their median.
    #[arg(long, default_value_t = 8)]
    pub time_files: usize,
}

pub fn plan(a: PlanArgs) -> anyhow::Result<()> {
    let spec = LoadedSpec::load_for_plan(&a.spec.spec)?;
    let shape = data_shape(&spec)?;
    spec.check_data(&shape)?;
    let root = a.spec.results.join(spec.spec.name.get_ref());
    let mut done = HashSet::new();
    for t in iscp_proto::Table::RESULTS {
        done.extend(done_units(&t.dir(&root))?);
    }
    let plans = expand(&spec, shape.classes, shape.train);
    println!(
        "{}: {} classes, {} training and {} test images of {:?}",
        spec.spec.name.get_ref(),
        shape.classes,
        shape.train,
        shape.test,
        shape.image
    );
    println!(
        "{:<22} {:>11} {:>14} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "setting",
        "derive-data",
        "prepare-model",
        "search",
        "evaluate",
        "baseline",
        "finishing",
        "done"
    );
    let (mut total, mut total_done, mut pictures) = (0, 0, 0);
    for p in &plans {
        let n = p.all_units().count();
        let d = p.all_units().filter(|u| done.contains(&u.id)).count();
        println!(
            "{:<22} {:>11} {:>14} {:>9} {:>9} {:>9} {:>9} {:>6}",
            p.setting.name,
            p.derives.len(),
            1,
            p.searches.len(),
            p.evaluations.len(),
            p.baselines.len(),
            p.finishing.len(),
            d
        );
        total += n;
        total_done += d;
        pictures += p
            .finishing
            .iter()
            .filter(|u| u.kind == UnitKind::Pictures)
            .count();
    }
    println!(
        "{total} units, {total_done} already done in {} (its {pictures} pictures units write files, \
         not rows: they are not counted as done here)",
        root.display()
    );
    println!();
    let measured = match a.guess {
        true => Measured::default(),
        false => time_models(&a, &spec, &plans, &shape)?,
    };
    println!(
        "{:<14} {:>7} {:>16} {:>12} {:>14}",
        "kind", "units", "image passes", "TMAC", "time"
    );
    let (mut seconds, mut guessed) = (0.0, false);
    let rate = |name: &str| measured.by_setting.get(name).copied();
    for (kind, c) in estimate(&spec, &plans, &shape, &rate) {
        let (s, mark) = match (c.seconds, a.guess) {
            (Some(s), false) => (s, ""),
            _ => (c.macs / a.macs_per_s, "*"),
        };
        guessed |= !mark.is_empty() && c.units > 0;
        seconds += s;
        println!(
            "{:<14} {:>7} {:>16.3e} {:>12.1} {:>13}{mark:1}",
            kind,
            c.units,
            c.image_passes,
            c.macs / 1e12,
            duration(std::time::Duration::from_secs_f64(s)),
        );
    }
    for note in &measured.notes {
        println!("note: {note}");
    }
    let total = duration(std::time::Duration::from_secs_f64(seconds));
    match (a.guess, guessed) {
        (false, false) => println!(
            "total: {total} on one {} worker (each model timed on it; a training or search image \
             counts 3 passes); n workers take about 1/n of it",
            device_name(&a, &spec)
        ),
        _ => println!(
            "total: {total} on one device; * guessed from assumed multiply-adds at {:.0} GMAC/s \
             (a TorchScript model counted as a ResNet-50){}",
            a.macs_per_s / 1e9,
            if a.guess { "" } else { ": the rest timed" }
        ),
    }
    Ok(())
}

/// The device name `plan` times on: `--device`, else the spec's `run.device`.
fn device_name(a: &PlanArgs, spec: &LoadedSpec) -> String {
    a.device
        .clone()
        .unwrap_or_else(|| spec.spec.run.device.clone())
}

/// Times every model of the plan on the chosen device (a line on stderr while it does).
fn time_models(
    a: &PlanArgs,
    spec: &LoadedSpec,
    plans: &[iscp_sweep::units::SettingPlan],
    shape: &iscp_sweep::cost::DataShape,
) -> anyhow::Result<Measured> {
    let name = device_name(a, spec);
    let device = iscp_engine::parse_device(&name)?;
    if let Err(e) = iscp_engine::cuda::ensure(device) {
        // Planning a device this machine lacks: every time is a guess, and says so.
        return Ok(Measured {
            notes: vec![format!(
                "nothing timed ({e}): times are guesses; `--device cpu` times on this machine"
            )],
            ..Default::default()
        });
    }
    if let Some(t) = a.threads.or(spec.spec.run.threads) {
        tch::set_num_threads(t as i32);
    }
    let busy = (!device.is_cuda())
        .then(|| busy_note(tch::get_num_threads()))
        .flatten();
    let started = std::time::Instant::now();
    let mut m = measure_plans(spec, plans, shape, device, a.time_files, &mut |setting| {
        eprintln!("timing the model of {setting} on {name}…");
    });
    m.notes.extend(busy);
    eprintln!(
        "timed {} model(s) in {:.1} s",
        m.timed,
        started.elapsed().as_secs_f64()
    );
    Ok(m)
}

/// A warning when other processes keep this machine's cores busy (the last minute's load average
/// at or above three quarters of the `threads` libtorch times with): its threads then share the
/// cores, and where they spin long (a user's `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`; `crate::omp_wait`
/// keeps the spin short otherwise) a timing can come out hundreds of times slower (measured:
/// a population's training planned at 800 h instead of 1 h 13 min beside a 2-thread run on 2
/// cores).
fn busy_note(threads: i32) -> Option<String> {
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let how_slow = if crate::omp_wait::may_spin_long() {
        "slower than on an idle machine, and can come out many times slower (OMP_WAIT_POLICY or \
         GOMP_SPINCOUNT is set: libtorch's threads may spin against the other work's)"
    } else {
        "slower than on an idle machine by about the share of the cores the other work takes"
    };
    is_busy(load, threads).then(|| {
        format!(
            "the machine was busy while timing (load average {load:.1} over the last minute, \
             {threads} libtorch threads): timings beside other work come out {how_slow}; plan on \
             an idle machine"
        )
    })
}

fn is_busy(load: f64, threads: i32) -> bool {
    load >= 0.75 * f64::from(threads.max(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_load_near_the_threads_is_busy() {
        assert!(super::is_busy(2.0, 2));
        assert!(super::is_busy(1.5, 2));
        assert!(!super::is_busy(0.3, 2));
        assert!(!super::is_busy(0.7, 1));
        assert!(super::is_busy(0.8, 0));
    }
}
