//! Spec submission: parse and check the spec (the same errors as `iscp run`), expand it into units
//! with their dependencies, and hand them to the scheduler.

use super::core::NewUnit;
use super::CoreError;
use crate::cost::known_shape;
use crate::spec::LoadedSpec;
use crate::units::plan;
use sha2::{Digest, Sha256};

/// A checked spec, expanded.
pub struct Expanded {
    pub sweep: String,
    pub spec_sha: String,
    pub units: Vec<NewUnit>,
}

/// Parses `source`, learns the number of classes (from the data's known shape, or by loading the
/// data), and lists the units in dependency order.
pub fn expand(source: &str, file: &str) -> Result<Expanded, CoreError> {
    let spec = LoadedSpec::parse_for_plan(source, file)?;
    let classes = match known_shape(&spec) {
        Some(s) => s.classes,
        None => {
            let s = &spec.spec;
            crate::work::load_data(&s.data, s.seed)?.test.num_classes()
        }
    };
    spec.check_classes(classes)?;
    let mut units = Vec::new();
    for p in plan(&spec, classes) {
        let model = p.prepare.id.clone();
        for u in p.all_units() {
            units.push(NewUnit {
                id: u.id.clone(),
                kind: u.kind.name().to_string(),
                model_unit: if u.id == model {
                    String::new()
                } else {
                    model.clone()
                },
                deps: u.deps.clone(),
            });
        }
    }
    Ok(Expanded {
        sweep: spec.spec.name.get_ref().clone(),
        spec_sha: hex::encode(Sha256::digest(source.as_bytes())),
        units,
    })
}

/// `n` units of the `noop` kind (the coordinator benchmark): no dependencies, no results.
pub fn noop_units(n: usize) -> Vec<NewUnit> {
    (0..n)
        .map(|i| NewUnit {
            id: format!("noop-{i:08}"),
            kind: "noop".into(),
            model_unit: String::new(),
            deps: vec![],
        })
        .collect()
}
