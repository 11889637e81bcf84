//! The end of a sweep, once every unit is done or failed: pictures, comparison figures, the
//! backdoor scan and pattern transfer, all from the tables (the local runner and the coordinator
//! both call it).

use super::{compare, load_data, pictures, run_transfer, sweep_scan, Layout};
use crate::progress::Progress;
use crate::spec::LoadedSpec;
use crate::units::{plan, SettingPlan};
use crate::Result;
use iscp_engine::data::{stratified_split, DataSplits};
use tch::Device;

/// What finishing drew and found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Finished {
    pub pictures: usize,
    pub transfers: usize,
}

/// Loads the spec's data and finishes the sweep in `layout` (pictures, scan, transfer).
pub fn finish_spec(spec: &LoadedSpec, layout: &Layout, progress: &Progress) -> Result<Finished> {
    let s = &spec.spec;
    let data = load_data(&s.data, s.seed)?;
    let plans = plan(spec, data.test.num_classes(), data.train.len());
    finish(spec, layout, &plans, &data, Device::Cpu, progress)
}

pub fn finish(
    spec: &LoadedSpec,
    layout: &Layout,
    plans: &[SettingPlan],
    data: &DataSplits,
    device: Device,
    progress: &Progress,
) -> Result<Finished> {
    let s = &spec.spec;
    let mut out = Finished::default();
    for p in plans {
        out.pictures += pictures::draw_setting(layout, p, &data.test, s.search.sizes.get_ref())?;
        out.pictures += compare::draw_comparisons(layout, p, &data.test, s.search.sizes.get_ref())?;
        if let Some(scan) = &s.scan {
            sweep_scan::sweep_scan(layout, p, *scan.size.get_ref(), progress)?;
        }
    }
    let transfers = s.transfer.get_ref();
    if transfers.is_empty() {
        return Ok(out);
    }
    let labels = data.test.labels_vec();
    let split = stratified_split(
        &labels,
        data.test.num_classes(),
        *s.search.subset_fraction.get_ref(),
        s.seed,
    );
    for t in transfers {
        let find = |name: &str| plans.iter().find(|p| p.setting.name == name);
        let (Some(from), Some(to)) = (find(&t.from), find(&t.to)) else {
            continue;
        };
        match run_transfer(layout, from, to, &to.setting, data, &split, device) {
            Ok(rows) => {
                out.transfers += 1;
                let mean = rows
                    .iter()
                    .map(|r| r.ratio)
                    .filter(|r| r.is_finite())
                    .sum::<f64>()
                    / rows.len().max(1) as f64;
                progress.println(&format!(
                    "transfer {} → {}: {} patterns, mean PW ratio {mean:.3}",
                    t.from,
                    t.to,
                    rows.len()
                ));
            }
            Err(e) => progress.println(&format!("transfer {} → {} failed: {e}", t.from, t.to)),
        }
    }
    Ok(out)
}
