//! A spec expanded into units: parsed and checked (the same errors as `iscp run`), the number of
//! classes learnt (from the data's known shape, or by loading the data), and every unit listed in
//! dependency order with its parameters, model and estimated work: milliseconds on the device its
//! models were timed on, or at an assumed multiply-add rate when they were not.

use super::{NewUnit, SchedulerError, UnitKind};
use iscp_sweep::cost::{
    data_shape, known_class_names, model_plan, overhead_s, unit_cost, unit_passes, unit_work,
    GUESS_MACS_PER_S,
};
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::throughputs::{measure_plans, Measured};
use iscp_sweep::units::{plan, UnitParams};
use sha2::{Digest, Sha256};

/// A checked spec, expanded.
pub struct Expanded {
    pub sweep: String,
    pub spec_sha: String,
    pub units: Vec<NewUnit>,
    /// Its classes' names where known without reading the data (progress lines use them).
    pub class_names: Vec<String>,
}

/// TorchScript files timed at most when a spec is submitted (the others count as their median).
const TIMED_FILES: usize = 8;

/// Parses `source`, learns the number of classes (from the data's known shape, or by loading the
/// data), and lists the units in dependency order. With `time_on`, each model is timed on that
/// device first and a unit's work is its estimated milliseconds there.
pub fn expand(source: &str, file: &str, time_on: Option<&str>) -> Result<Expanded, SchedulerError> {
    let spec = LoadedSpec::parse_for_plan(source, file)?;
    let shape = data_shape(&spec)?;
    let classes = shape.classes;
    spec.check_data(&shape)?;
    let mut units = Vec::new();
    let plans = plan(&spec, classes, shape.train);
    let measured = match time_on.map(iscp_engine::parse_device) {
        Some(Ok(device)) => measure_plans(&spec, &plans, &shape, device, TIMED_FILES, &mut |_| {}),
        _ => Measured::default(),
    };
    for p in &plans {
        let prepare_id = p.prepare.id.clone();
        for u in p.all_units() {
            let on = model_plan(&plans, p, u);
            let seconds = match measured.by_setting.get(&on.setting.name) {
                Some(rate) => unit_passes(&spec, p, u, &shape).seconds(rate),
                None => unit_cost(&spec, &plans, p, u, &shape).1 / GUESS_MACS_PER_S,
            };
            units.push(NewUnit {
                work: unit_work(seconds + overhead_s(u)),
                id: u.id.clone(),
                kind: u.kind,
                params: u.params_json(),
                // A derive-data unit runs on its source setting's model (its one dependency), a
                // transfer on the other setting's; pictures and scans on none.
                prepare_id: match &u.params {
                    UnitParams::Derive(d) => d.source_prepare_id.clone(),
                    UnitParams::Transfer(t) => t.to_prepare_id.clone(),
                    UnitParams::Pictures(_) | UnitParams::Scan(_) | UnitParams::Audit(_) => {
                        String::new()
                    }
                    _ if u.id == prepare_id => String::new(),
                    _ => prepare_id.clone(),
                },
                deps: u.deps.clone(),
            });
        }
    }
    Ok(Expanded {
        sweep: spec.spec.name.get_ref().clone(),
        spec_sha: hex::encode(Sha256::digest(source.as_bytes())),
        units,
        class_names: known_class_names(&spec),
    })
}

/// `n` units of the `noop` kind (the coordinator benchmark): no dependencies, no results.
pub fn noop_units(n: usize) -> Vec<NewUnit> {
    (0..n)
        .map(|i| NewUnit {
            id: format!("noop-{i:08}"),
            kind: UnitKind::Noop,
            params: String::new(),
            prepare_id: String::new(),
            deps: vec![],
            work: 1,
        })
        .collect()
}
