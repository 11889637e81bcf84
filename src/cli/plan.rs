//! `iscp plan SPEC`: the unit grid, without running anything.

use super::SpecArgs;
use iscp_coordinator::local::load_data;
use iscp_coordinator::spec::LoadedSpec;
use iscp_coordinator::tables::done_units;
use iscp_coordinator::units::plan as expand;
use std::collections::HashSet;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn plan(a: PlanArgs) -> anyhow::Result<()> {
    let spec = LoadedSpec::load(&a.spec.spec)?;
    let data = load_data(&spec.spec.data, spec.spec.seed)?;
    spec.check_classes(data.test.num_classes())?;
    let root = a.spec.results.join(spec.spec.name.get_ref());
    let mut done = HashSet::new();
    for t in ["models", "searches", "patterns", "baselines"] {
        done.extend(done_units(&root.join(t))?);
    }
    let plans = expand(&spec, data.test.num_classes());
    println!(
        "{:<16} {:>14} {:>9} {:>9} {:>9} {:>6}",
        "setting", "prepare-model", "search", "evaluate", "baseline", "done"
    );
    let (mut total, mut total_done) = (0, 0);
    for p in &plans {
        let n = p.all_units().count();
        let d = p.all_units().filter(|u| done.contains(&u.id)).count();
        println!(
            "{:<16} {:>14} {:>9} {:>9} {:>9} {:>6}",
            p.setting.name,
            1,
            p.searches.len(),
            p.evaluations.len(),
            p.baselines.len(),
            d
        );
        total += n;
        total_done += d;
    }
    println!(
        "{total} units, {total_done} already done in {}",
        root.display()
    );
    Ok(())
}
