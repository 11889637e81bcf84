//! The planners of the units that finish one setting: its pictures, scan, detectors (Neural
//! Cleanse, MM-BD, the UAP scan) and transfers.

use super::{
    unit, CleanseParams, MarginParams, PicturesParams, ScanParams, TransferParams, UapScanParams,
    Unit, UnitKind, UnitParams,
};
use crate::spec::{LoadedSpec, SettingSpec};

/// The units that finish one setting: pictures (reading its evaluations, the searches they name
/// and its baselines), the scan and the transfers (reading its evaluations, and for a transfer
/// the searches and the other setting's model). Their ids hash the ids they read.
pub(super) fn finishing_units(
    spec: &LoadedSpec,
    setting: &SettingSpec,
    prepare_id: &str,
    searches: &[Unit],
    evaluations: &[Unit],
    baselines: &[Unit],
    prepare_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<Unit> {
    if evaluations.is_empty() {
        return vec![];
    }
    let ids = |units: &[Unit]| units.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
    let (evals, reads) = (ids(evaluations), ids(searches));
    let mut out = vec![pictures_unit(
        spec,
        setting,
        prepare_id,
        &evals,
        &reads,
        ids(baselines),
    )];
    out.extend(scan_unit(spec, setting, prepare_id, &evals, &reads));
    out.extend(cleanse_units(spec, setting, prepare_id));
    out.extend(margin_unit(spec, setting, prepare_id));
    out.extend(uap_scan_unit(spec, setting, prepare_id));
    out.extend(transfer_units(spec, setting, &evals, &reads, prepare_of));
    out
}

/// A setting's pictures: its evaluations (`evals`), the searches they name (`reads`) and its
/// baselines.
fn pictures_unit(
    spec: &LoadedSpec,
    setting: &SettingSpec,
    prepare_id: &str,
    evals: &[String],
    reads: &[String],
    baselines: Vec<String>,
) -> Unit {
    let p = PicturesParams {
        setting: setting.name.clone(),
        prepare_id: prepare_id.to_string(),
        sizes: spec.spec.search.sizes.get_ref().clone(),
        evaluations: evals.to_vec(),
        baselines,
    };
    let deps = [evals.to_vec(), reads.to_vec(), p.baselines.clone()].concat();
    unit(UnitKind::Pictures, UnitParams::Pictures(p), deps)
}

/// A setting's scan (with `[scan]`, or a population): its evaluations, and in a population the
/// searches too.
fn scan_unit(
    spec: &LoadedSpec,
    setting: &SettingSpec,
    prepare_id: &str,
    evals: &[String],
    reads: &[String],
) -> Option<Unit> {
    let size = spec.scan_size()?;
    let population = spec.spec.population.is_some();
    let p = ScanParams {
        setting: setting.name.clone(),
        prepare_id: prepare_id.to_string(),
        size,
        evaluations: evals.to_vec(),
        searches: if population { reads.to_vec() } else { vec![] },
    };
    let deps = [evals.to_vec(), p.searches.clone()].concat();
    Some(unit(UnitKind::Scan, UnitParams::Scan(p), deps))
}

/// Neural Cleanse on a setting's model (in a population), one unit per cost schedule.
fn cleanse_units(spec: &LoadedSpec, setting: &SettingSpec, prepare_id: &str) -> Vec<Unit> {
    let s = &spec.spec;
    let Some(pop) = s.population.as_ref() else {
        return vec![];
    };
    let budget = &pop.get_ref().cleanse;
    let mut schedules = budget.schedules.clone();
    schedules.dedup();
    schedules
        .into_iter()
        .map(|schedule| {
            let p = CleanseParams {
                setting: setting.name.clone(),
                prepare_id: prepare_id.to_string(),
                budget: budget.clone(),
                schedule,
                subset_fraction: *s.search.subset_fraction.get_ref(),
                seed: s.seed,
            };
            unit(
                UnitKind::Cleanse,
                UnitParams::Cleanse(p),
                vec![prepare_id.to_string()],
            )
        })
        .collect()
}

/// MM-BD on a setting's model (in a population).
fn margin_unit(spec: &LoadedSpec, setting: &SettingSpec, prepare_id: &str) -> Option<Unit> {
    let pop = spec.spec.population.as_ref()?;
    let p = MarginParams {
        setting: setting.name.clone(),
        prepare_id: prepare_id.to_string(),
        budget: pop.get_ref().margin.clone(),
        seed: spec.spec.seed,
    };
    Some(unit(
        UnitKind::MaxMargin,
        UnitParams::Margin(p),
        vec![prepare_id.to_string()],
    ))
}

/// The targeted-UAP detector on a setting's model (in a population).
fn uap_scan_unit(spec: &LoadedSpec, setting: &SettingSpec, prepare_id: &str) -> Option<Unit> {
    let s = &spec.spec;
    let pop = s.population.as_ref()?;
    let p = UapScanParams {
        setting: setting.name.clone(),
        prepare_id: prepare_id.to_string(),
        budget: pop.get_ref().uap.clone(),
        subset_fraction: *s.search.subset_fraction.get_ref(),
        seed: s.seed,
    };
    Some(unit(
        UnitKind::UapScan,
        UnitParams::UapScan(p),
        vec![prepare_id.to_string()],
    ))
}

/// The transfers of a setting's patterns (`[[transfer]]` with `from` this setting) to the models
/// of other settings (`prepare_of` names their prepare units).
fn transfer_units(
    spec: &LoadedSpec,
    setting: &SettingSpec,
    evals: &[String],
    reads: &[String],
    prepare_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<Unit> {
    let s = &spec.spec;
    let mut out = Vec::new();
    for t in s.transfer.get_ref() {
        let Some(to_prepare_id) = prepare_of(&t.to).filter(|_| t.from == setting.name) else {
            continue;
        };
        let p = TransferParams {
            from: t.from.clone(),
            to: t.to.clone(),
            to_prepare_id: to_prepare_id.clone(),
            evaluations: evals.to_vec(),
            subset_fraction: *s.search.subset_fraction.get_ref(),
            seed: s.seed,
        };
        let deps = [evals.to_vec(), reads.to_vec(), vec![to_prepare_id]].concat();
        out.push(unit(UnitKind::Transfer, UnitParams::Transfer(p), deps));
    }
    out
}
