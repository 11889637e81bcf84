//! `iscp plan SPEC`: the unit grid and its estimated cost, without running anything (the data
//! need not be present for Fashion-MNIST, CIFAR-10 or synthetic specs).

use super::SpecArgs;
use iscp_sweep::cost::{data_shape, estimate};
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::tables::done_units;
use iscp_sweep::units::plan as expand;
use iscp_sweep::units::UnitKind;
use std::collections::HashSet;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Sustained multiply-adds per second of one device, for the time estimate (default: 25 G,
    /// what a batched small-CNN search reaches on 2 cores of an AMD EPYC).
    #[arg(long, default_value_t = 25e9)]
    pub macs_per_s: f64,
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
    println!(
        "{:<14} {:>7} {:>16} {:>12} {:>12}",
        "kind", "units", "image passes", "TMAC", "hours"
    );
    let mut hours = 0.0;
    for (kind, c) in estimate(&spec, &plans, &shape) {
        let h = c.macs / a.macs_per_s / 3600.0;
        hours += h;
        println!(
            "{:<14} {:>7} {:>16.3e} {:>12.1} {:>12.2}",
            kind,
            c.units,
            c.image_passes,
            c.macs / 1e12,
            h
        );
    }
    println!("total: {hours:.2} device-hours at {:.0} GMAC/s (a training or search image counts 3 passes)", a.macs_per_s / 1e9);
    Ok(())
}
