//! Units of work and their ids: a spec expands into derive-data, prepare-model, search, evaluate and
//! baseline units, and the units that finish it (pictures, scan, transfer), whose ids hash their
//! kind and parameters, so the same spec always yields the same ids.

use crate::spec::{LoadedSpec, SettingSpec};
use iscp_engine::canvas::CanvasKind;
use iscp_engine::search::Objective;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a unit does: the wire's enum, with every per-kind fact (`iscp_proto`'s `unit_kind.rs`).
pub use iscp_proto::v1::UnitKind;

/// A variant of the search objective: total variation (Eq. 3) and/or a learned canvas (Eq. 4).
/// Fields at their defaults are left out of the id, so base searches keep their ids.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Variant {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tv_beta: f64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub learn_canvas: bool,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Variant {
    /// `base`, `tv`, `learned-canvas` or `tv+learned-canvas`.
    pub fn name(&self) -> &'static str {
        match (self.tv_beta > 0.0, self.learn_canvas) {
            (false, false) => "base",
            (true, false) => "tv",
            (false, true) => "learned-canvas",
            (true, true) => "tv+learned-canvas",
        }
    }
}

/// One search: a class, a canvas, an alpha and an objective on a setting's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchParams {
    pub setting: String,
    pub setting_id: String,
    pub class: i64,
    pub canvas_kind: CanvasKind,
    pub canvas_rank: usize,
    pub alpha: f64,
    pub objective: Objective,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub subset_fraction: f64,
    pub seed: u64,
    #[serde(flatten)]
    pub variant: Variant,
}

/// Evaluation of one group (setting, class, alpha, objective) over all its canvases and sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateParams {
    pub setting: String,
    pub setting_id: String,
    pub class: i64,
    pub alpha: f64,
    pub objective: Objective,
    pub sizes: Vec<f64>,
    pub subset_fraction: f64,
    pub seed: u64,
    #[serde(flatten)]
    pub variant: Variant,
    pub search_ids: Vec<String>,
}

/// A baseline pattern for one class: a class-wise UAP at one ε, or Grad-CAM patches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineParams {
    pub setting: String,
    pub setting_id: String,
    pub class: i64,
    /// `uap` or `gradcam`.
    pub method: String,
    /// UAP: ε in pixel units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    /// Grad-CAM: the patch size and the canvases (kind, rank) it is computed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canvases: Vec<(CanvasKind, usize)>,
    pub subset_fraction: f64,
    pub seed: u64,
}

/// One shard of a derived (D_R / D_NR) training set: training images `start..start + count`
/// rebuilt on the model of the setting `source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeriveParams {
    /// The derived setting.
    pub setting: String,
    /// The setting whose model is inverted, and its prepare unit.
    pub source: String,
    pub source_id: String,
    pub start: usize,
    pub count: usize,
    pub steps: usize,
    pub step_size: f64,
    pub batch: usize,
    pub seed: u64,
}

/// A setting's pictures, drawn from the parts of its evaluations (and the searches they name) and
/// of its baselines, once they are all settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PicturesParams {
    pub setting: String,
    pub setting_id: String,
    pub sizes: Vec<f64>,
    pub evaluations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<String>,
}

/// A setting's backdoor scan from its evaluations' best patterns at `size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanParams {
    pub setting: String,
    pub setting_id: String,
    pub size: f64,
    pub evaluations: Vec<String>,
    /// A population's scan also writes the model's `detection` row, reading these searches (the
    /// masks for the trigger IoU, the seconds); absent in other specs, so their ids stay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
}

/// Neural Cleanse on one setting's model, with the clean images the searches use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CleanseParams {
    pub setting: String,
    pub setting_id: String,
    #[serde(flatten)]
    pub budget: crate::spec::CleanseSpec,
    pub subset_fraction: f64,
    pub seed: u64,
}

/// The audit of a population: every model's ground truth (its prepare unit's `models` row) and
/// every detector's row (its scan and cleanse units' `detection` parts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditParams {
    pub prepares: Vec<String>,
    pub detections: Vec<String>,
    pub calibration_share: f64,
    pub seed: u64,
}

/// The best patterns of setting `from` (its evaluations) evaluated on the model of setting `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferParams {
    pub from: String,
    pub to: String,
    /// The prepare unit of `to`: the model the patterns are evaluated on.
    pub to_id: String,
    pub evaluations: Vec<String>,
    pub subset_fraction: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UnitParams {
    Derive(DeriveParams),
    Prepare {
        // Boxed: a setting is large beside the other variants (serialises the same).
        setting: Box<SettingSpec>,
        data: serde_json::Value,
        seed: u64,
    },
    Search(SearchParams),
    Evaluate(EvaluateParams),
    Baseline(BaselineParams),
    Pictures(PicturesParams),
    Scan(ScanParams),
    Transfer(TransferParams),
    Cleanse(CleanseParams),
    Audit(AuditParams),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub id: String,
    pub kind: UnitKind,
    pub deps: Vec<String>,
    pub params: UnitParams,
}

/// The exact text a unit's id hashes: the JSON of its kind and parameters. It travels with the
/// unit (the ledger keeps it, a lease carries it), so a worker checks the id it computes.
pub fn params_json(kind: UnitKind, params: &impl Serialize) -> String {
    // The kind by its name: the same JSON as when the kind was a serde enum (ids unchanged).
    serde_json::to_string(&(kind.name(), params)).expect("parameters serialise")
}

/// A unit's id from its parameters' JSON: the first 16 hex digits of its sha256.
pub fn id_of(params_json: &str) -> String {
    hex::encode(&Sha256::digest(params_json.as_bytes())[..8])
}

/// First 16 hex digits of sha256 over the kind and canonical JSON of the parameters.
pub fn unit_id(kind: UnitKind, params: &impl Serialize) -> String {
    id_of(&params_json(kind, params))
}

impl Unit {
    /// The JSON this unit's id hashes.
    pub fn params_json(&self) -> String {
        params_json(self.kind, &self.params)
    }
}

/// A unit's parameters as a worker receives them with its lease. A prepare unit's hold the whole
/// setting; the worker takes the setting from the spec by name, and the id check proves it is the
/// one the coordinator planned.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Derive(DeriveParams),
    Prepare { setting: String },
    Search(SearchParams),
    Evaluate(EvaluateParams),
    Baseline(BaselineParams),
    Pictures(PicturesParams),
    Scan(ScanParams),
    Transfer(TransferParams),
    Cleanse(CleanseParams),
    Audit(AuditParams),
}

impl Received {
    /// Decodes `params_json` (as `params_json` wrote it) for a unit of `kind`.
    pub fn decode(kind: UnitKind, params_json: &str) -> std::result::Result<Received, String> {
        let (k, v): (String, serde_json::Value) =
            serde_json::from_str(params_json).map_err(|e| format!("unreadable parameters: {e}"))?;
        if k != kind.name() {
            return Err(format!(
                "parameters of a {} unit for a {} unit",
                k.escape_debug(),
                kind.name()
            ));
        }
        let bad = |e: serde_json::Error| format!("{} parameters: {e}", kind.name());
        Ok(match kind {
            UnitKind::DeriveData => Received::Derive(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Search => Received::Search(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Evaluate => Received::Evaluate(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Baseline => Received::Baseline(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Pictures => Received::Pictures(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Scan => Received::Scan(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Transfer => Received::Transfer(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Cleanse => Received::Cleanse(serde_json::from_value(v).map_err(bad)?),
            UnitKind::Audit => Received::Audit(serde_json::from_value(v).map_err(bad)?),
            UnitKind::PrepareModel => Received::Prepare {
                setting: v["setting"]["name"]
                    .as_str()
                    .ok_or("prepare-model parameters without a setting name")?
                    .to_string(),
            },
            UnitKind::Noop | UnitKind::Unspecified => {
                return Err(format!("a {kind} unit has no parameters"))
            }
        })
    }

    /// The name of the setting whose model this unit runs on (a derive unit: its source
    /// setting, whose model it inverts; a transfer: the setting it evaluates on; pictures and a
    /// scan: the setting they draw or scan, without its model).
    pub fn setting(&self) -> &str {
        match self {
            Received::Derive(d) => &d.source,
            Received::Prepare { setting } => setting,
            Received::Search(p) => &p.setting,
            Received::Evaluate(p) => &p.setting,
            Received::Baseline(p) => &p.setting,
            Received::Pictures(p) => &p.setting,
            Received::Scan(p) => &p.setting,
            Received::Transfer(p) => &p.to,
            Received::Cleanse(p) => &p.setting,
            // The audit reads the whole population; it names no setting.
            Received::Audit(_) => "",
        }
    }
}

fn unit(kind: UnitKind, params: UnitParams, deps: Vec<String>) -> Unit {
    Unit {
        id: unit_id(kind, &params),
        kind,
        deps,
        params,
    }
}

/// The units of one setting, in dependency order: prepare, searches, evaluations, baselines, then
/// the units that finish it.
#[derive(Debug, Clone)]
pub struct SettingPlan {
    pub setting: SettingSpec,
    /// The shards of a derived training set (empty unless the setting has `derive`).
    pub derives: Vec<Unit>,
    pub prepare: Unit,
    pub searches: Vec<Unit>,
    pub evaluations: Vec<Unit>,
    pub baselines: Vec<Unit>,
    /// Its pictures, its scan (with `[scan]`), and the transfers of its patterns to other
    /// settings' models (`[[transfer]]` with `from` this setting).
    pub finishing: Vec<Unit>,
}

impl SettingPlan {
    pub fn all_units(&self) -> impl Iterator<Item = &Unit> {
        self.derives
            .iter()
            .chain(std::iter::once(&self.prepare))
            .chain(&self.searches)
            .chain(&self.evaluations)
            .chain(&self.baselines)
            .chain(&self.finishing)
    }
}

/// The units that finish one setting: pictures (reading its evaluations, the searches they name
/// and its baselines), the scan and the transfers (reading its evaluations, and for a transfer
/// the searches and the other setting's model). Their ids hash the ids they read.
fn finishing_units(
    spec: &LoadedSpec,
    setting: &SettingSpec,
    prepare_id: &str,
    searches: &[Unit],
    evaluations: &[Unit],
    baselines: &[Unit],
    prepare_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<Unit> {
    let s = &spec.spec;
    let ids = |units: &[Unit]| units.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
    let (evals, reads) = (ids(evaluations), ids(searches));
    let mut out = Vec::new();
    if evaluations.is_empty() {
        return out;
    }
    let p = PicturesParams {
        setting: setting.name.clone(),
        setting_id: prepare_id.to_string(),
        sizes: s.search.sizes.get_ref().clone(),
        evaluations: evals.clone(),
        baselines: ids(baselines),
    };
    let deps = [evals.clone(), reads.clone(), p.baselines.clone()].concat();
    out.push(unit(UnitKind::Pictures, UnitParams::Pictures(p), deps));
    if let Some(size) = spec.scan_size() {
        let population = s.population.is_some();
        let p = ScanParams {
            setting: setting.name.clone(),
            setting_id: prepare_id.to_string(),
            size,
            evaluations: evals.clone(),
            searches: if population { reads.clone() } else { vec![] },
        };
        let deps = [evals.clone(), p.searches.clone()].concat();
        out.push(unit(UnitKind::Scan, UnitParams::Scan(p), deps));
    }
    if let Some(pop) = &s.population {
        let p = CleanseParams {
            setting: setting.name.clone(),
            setting_id: prepare_id.to_string(),
            budget: pop.get_ref().cleanse.clone(),
            subset_fraction: *s.search.subset_fraction.get_ref(),
            seed: s.seed,
        };
        out.push(unit(
            UnitKind::Cleanse,
            UnitParams::Cleanse(p),
            vec![prepare_id.to_string()],
        ));
    }
    for t in s.transfer.get_ref() {
        let Some(to_id) = prepare_of(&t.to).filter(|_| t.from == setting.name) else {
            continue;
        };
        let p = TransferParams {
            from: t.from.clone(),
            to: t.to.clone(),
            to_id: to_id.clone(),
            evaluations: evals.clone(),
            subset_fraction: *s.search.subset_fraction.get_ref(),
            seed: s.seed,
        };
        let deps = [evals.clone(), reads.clone(), vec![to_id]].concat();
        out.push(unit(UnitKind::Transfer, UnitParams::Transfer(p), deps));
    }
    out
}

/// The derive-data shards of a derived setting, over the first `images` of `train` training images.
fn derive_units(setting: &SettingSpec, source_id: &str, train: usize, seed: u64) -> Vec<Unit> {
    let Some(d) = &setting.derive else {
        return vec![];
    };
    let d = d.get_ref();
    let n = d.images.map_or(train, |i| i.min(train));
    (0..n)
        .step_by(d.shard.max(1))
        .map(|start| {
            let p = DeriveParams {
                setting: setting.name.clone(),
                source: d.from.clone(),
                source_id: source_id.to_string(),
                start,
                count: d.shard.min(n - start),
                steps: d.steps,
                step_size: d.step_size,
                batch: d.batch,
                seed,
            };
            unit(
                UnitKind::DeriveData,
                UnitParams::Derive(p),
                vec![source_id.to_string()],
            )
        })
        .collect()
}

/// Expands a spec into its unit grid: setting × class × canvas × alpha × objective, with the
/// units that prepare each setting's model (and, for a derived setting, its training set; `train`
/// is the number of training images).
pub fn plan(spec: &LoadedSpec, num_classes: usize, train: usize) -> Vec<SettingPlan> {
    let s = &spec.spec;
    let q = &s.search;
    let data = serde_json::to_value(&s.data).expect("data spec serialises");
    let classes = spec.classes(num_classes);
    let variants: Vec<Variant> = q
        .tv_betas
        .get_ref()
        .iter()
        .flat_map(|&tv_beta| {
            q.learned_canvas.iter().map(move |&learn_canvas| Variant {
                tv_beta,
                learn_canvas,
            })
        })
        .collect();
    let settings = spec.settings(num_classes);
    // Prepare ids do not depend on dependencies, so a derived setting can name its source's.
    let prepares: Vec<Unit> = settings
        .iter()
        .map(|setting| {
            let params = UnitParams::Prepare {
                setting: Box::new(setting.clone()),
                data: data.clone(),
                seed: s.seed,
            };
            unit(UnitKind::PrepareModel, params, vec![])
        })
        .collect();
    let prepare_of = |name: &str| {
        let i = settings.iter().position(|st| st.name == name);
        &prepares[i.expect("checked: `derive.from` names a setting")].id
    };
    let find_prepare = |name: &str| {
        let i = settings.iter().position(|st| st.name == name)?;
        Some(prepares[i].id.clone())
    };
    let mut plans: Vec<SettingPlan> = settings
        .iter()
        .zip(&prepares)
        .map(|(setting, prepare)| {
            let derives = match &setting.derive {
                Some(d) => derive_units(setting, prepare_of(&d.get_ref().from), train, s.seed),
                None => vec![],
            };
            let prepare = Unit {
                deps: derives.iter().map(|u| u.id.clone()).collect(),
                ..prepare.clone()
            };
            let mut searches = Vec::new();
            let mut evaluations = Vec::new();
            for &class in &classes {
                for &alpha in q.alphas.get_ref() {
                    for (&objective, &variant) in q
                        .objectives
                        .iter()
                        .flat_map(|o| variants.iter().map(move |v| (o, v)))
                    {
                        let mut ids = Vec::new();
                        for c in q.canvases.get_ref() {
                            let n = if c.kind == CanvasKind::White { 1 } else { c.n };
                            for rank in 0..n {
                                let p = SearchParams {
                                    setting: setting.name.clone(),
                                    setting_id: prepare.id.clone(),
                                    class,
                                    canvas_kind: c.kind,
                                    canvas_rank: rank,
                                    alpha,
                                    objective,
                                    epochs: *q.epochs.get_ref(),
                                    batch: *q.batch.get_ref(),
                                    lr: *q.lr.get_ref(),
                                    subset_fraction: *q.subset_fraction.get_ref(),
                                    seed: s.seed,
                                    variant,
                                };
                                let u = unit(
                                    UnitKind::Search,
                                    UnitParams::Search(p),
                                    vec![prepare.id.clone()],
                                );
                                ids.push(u.id.clone());
                                searches.push(u);
                            }
                        }
                        let e = EvaluateParams {
                            setting: setting.name.clone(),
                            setting_id: prepare.id.clone(),
                            class,
                            alpha,
                            objective,
                            sizes: q.sizes.get_ref().clone(),
                            subset_fraction: *q.subset_fraction.get_ref(),
                            seed: s.seed,
                            variant,
                            search_ids: ids.clone(),
                        };
                        evaluations.push(unit(UnitKind::Evaluate, UnitParams::Evaluate(e), ids));
                    }
                }
            }
            let mut baselines = Vec::new();
            if let Some(b) = &s.baselines {
                for &class in &classes {
                    let base = BaselineParams {
                        setting: setting.name.clone(),
                        setting_id: prepare.id.clone(),
                        class,
                        method: String::new(),
                        eps: None,
                        size: None,
                        canvases: vec![],
                        subset_fraction: *q.subset_fraction.get_ref(),
                        seed: s.seed,
                    };
                    for &eps in &b.uap_eps {
                        let p = BaselineParams {
                            method: "uap".into(),
                            eps: Some(eps / 255.0),
                            ..base.clone()
                        };
                        baselines.push(unit(
                            UnitKind::Baseline,
                            UnitParams::Baseline(p),
                            vec![prepare.id.clone()],
                        ));
                    }
                    if b.gradcam {
                        let canvases = q
                            .canvases
                            .get_ref()
                            .iter()
                            .flat_map(|c| {
                                (0..if c.kind == CanvasKind::White { 1 } else { c.n })
                                    .map(move |r| (c.kind, r))
                            })
                            .collect();
                        let p = BaselineParams {
                            method: "gradcam".into(),
                            size: Some(b.gradcam_size),
                            canvases,
                            ..base.clone()
                        };
                        baselines.push(unit(
                            UnitKind::Baseline,
                            UnitParams::Baseline(p),
                            vec![prepare.id.clone()],
                        ));
                    }
                }
            }
            let finishing = finishing_units(
                spec,
                setting,
                &prepare.id,
                &searches,
                &evaluations,
                &baselines,
                &find_prepare,
            );
            SettingPlan {
                setting: setting.clone(),
                derives,
                prepare,
                searches,
                evaluations,
                baselines,
                finishing,
            }
        })
        .collect();
    if let (Some(pop), false) = (&s.population, plans.is_empty()) {
        let of = |kind: UnitKind| -> Vec<String> {
            plans
                .iter()
                .flat_map(|p| p.finishing.iter().filter(move |u| u.kind == kind))
                .map(|u| u.id.clone())
                .collect()
        };
        let p = AuditParams {
            prepares: plans.iter().map(|p| p.prepare.id.clone()).collect(),
            detections: [of(UnitKind::Scan), of(UnitKind::Cleanse)].concat(),
            calibration_share: pop.get_ref().calibration_share,
            seed: s.seed,
        };
        let deps = [p.prepares.clone(), p.detections.clone()].concat();
        let audit = unit(UnitKind::Audit, UnitParams::Audit(p), deps);
        // The sweep's one audit rides with the last setting's finishing units.
        plans.last_mut().expect("a last plan").finishing.push(audit);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_parameters_decode_to_what_was_planned() {
        let p = SearchParams {
            setting: "natural".into(),
            setting_id: "0123456789abcdef".into(),
            class: 2,
            canvas_kind: CanvasKind::White,
            canvas_rank: 0,
            alpha: 0.2,
            objective: Objective::Released,
            epochs: 5,
            batch: 4,
            lr: 0.02,
            subset_fraction: 0.2,
            seed: 1,
            variant: Variant {
                tv_beta: 0.0,
                learn_canvas: true,
            },
        };
        let json = params_json(UnitKind::Search, &UnitParams::Search(p.clone()));
        assert_eq!(
            id_of(&json),
            unit_id(UnitKind::Search, &UnitParams::Search(p.clone()))
        );
        assert_eq!(
            Received::decode(UnitKind::Search, &json).unwrap(),
            Received::Search(p)
        );
        assert!(Received::decode(UnitKind::Evaluate, &json)
            .unwrap_err()
            .contains("parameters of a search unit"));
        assert!(Received::decode(UnitKind::Search, "[1,").is_err());
    }
}
