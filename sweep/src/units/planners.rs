//! The plan: a spec's units, one planner per unit kind, called in the order that fixes the ids.

use super::finishing::finishing_units;
use super::{
    unit, AuditParams, BaselineParams, DeriveParams, EvaluateParams, PrepareParams, SearchParams,
    Unit, UnitKind, UnitParams, Variant,
};
use crate::spec::{CanvasSpec, LoadedSpec, SearchSpec, SettingSpec};
use iscp_engine::canvas::CanvasKind;
use iscp_engine::search::Objective;

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

/// What the planners of every setting share: the spec, its classes and the objective's variants.
struct Grid<'a> {
    spec: &'a LoadedSpec,
    classes: Vec<i64>,
    variants: Vec<Variant>,
}

/// One group of searches on a setting's model, which one evaluation scores together.
struct Group {
    class: i64,
    alpha: f64,
    objective: Objective,
    variant: Variant,
}

/// Expands a spec into its unit grid: setting × class × canvas × alpha × objective, with the
/// units that prepare each setting's model (and, for a derived setting, its training set; `train`
/// is the number of training images).
pub fn plan(spec: &LoadedSpec, num_classes: usize, train: usize) -> Vec<SettingPlan> {
    let s = &spec.spec;
    let data = serde_json::to_value(&s.data).expect("data spec serialises");
    let grid = Grid {
        spec,
        classes: spec.classes(num_classes),
        variants: variants(&s.search),
    };
    let settings = spec.settings(num_classes);
    // Prepare ids do not depend on dependencies, so a derived setting can name its source's.
    let prepares = prepare_units(&settings, &data, s.seed);
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
            setting_plan(&grid, setting, prepare, derives, &find_prepare)
        })
        .collect();
    if let Some(audit) = audit_unit(spec, &plans) {
        // The sweep's one audit rides with the last setting's finishing units.
        plans.last_mut().expect("a last plan").finishing.push(audit);
    }
    plans
}

/// The objective's variants: every total-variation β with every choice of a learned canvas.
fn variants(q: &SearchSpec) -> Vec<Variant> {
    q.tv_betas
        .get_ref()
        .iter()
        .flat_map(|&tv_beta| {
            q.learned_canvas.iter().map(move |&learn_canvas| Variant {
                tv_beta,
                learn_canvas,
            })
        })
        .collect()
}

/// The prepare-model unit of each setting, without dependencies (`setting_plan` adds them).
fn prepare_units(settings: &[SettingSpec], data: &serde_json::Value, seed: u64) -> Vec<Unit> {
    settings
        .iter()
        .map(|setting| {
            let params = UnitParams::Prepare(PrepareParams {
                setting: Box::new(setting.clone()),
                data: data.clone(),
                seed,
            });
            unit(UnitKind::PrepareModel, params, vec![])
        })
        .collect()
}

/// The derive-data shards of a derived setting, over the first `images` of `train` training images.
fn derive_units(
    setting: &SettingSpec,
    source_prepare_id: &str,
    train: usize,
    seed: u64,
) -> Vec<Unit> {
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
                source_prepare_id: source_prepare_id.to_string(),
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
                vec![source_prepare_id.to_string()],
            )
        })
        .collect()
}

/// One setting's plan: its prepare unit (depending on its `derives`), searches, evaluations,
/// baselines and finishing units (`prepare_of` names other settings' prepare units).
fn setting_plan(
    grid: &Grid<'_>,
    setting: &SettingSpec,
    prepare: &Unit,
    derives: Vec<Unit>,
    prepare_of: &dyn Fn(&str) -> Option<String>,
) -> SettingPlan {
    let prepare = Unit {
        deps: derives.iter().map(|u| u.id.clone()).collect(),
        ..prepare.clone()
    };
    let (searches, evaluations) = searches_and_evaluations(grid, setting, &prepare.id);
    let baselines = baseline_units(grid, setting, &prepare.id);
    let finishing = finishing_units(
        grid.spec,
        setting,
        &prepare.id,
        &searches,
        &evaluations,
        &baselines,
        prepare_of,
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
}

/// A setting's searches and evaluations: for each class, alpha, objective and variant (a group),
/// a search per canvas, and an evaluation reading the group's searches.
fn searches_and_evaluations(
    grid: &Grid<'_>,
    setting: &SettingSpec,
    prepare_id: &str,
) -> (Vec<Unit>, Vec<Unit>) {
    let q = &grid.spec.spec.search;
    let variants = &grid.variants;
    let mut searches = Vec::new();
    let mut evaluations = Vec::new();
    for &class in &grid.classes {
        for &alpha in q.alphas.get_ref() {
            for (&objective, &variant) in q
                .objectives
                .iter()
                .flat_map(|o| variants.iter().map(move |v| (o, v)))
            {
                let group = Group {
                    class,
                    alpha,
                    objective,
                    variant,
                };
                let group_searches = search_units(grid, setting, prepare_id, &group);
                let ids: Vec<String> = group_searches.iter().map(|u| u.id.clone()).collect();
                searches.extend(group_searches);
                evaluations.push(evaluate_unit(grid, setting, prepare_id, &group, ids));
            }
        }
    }
    (searches, evaluations)
}

/// How many canvases of a kind the search uses: ranks `0..n`, a white canvas once.
fn canvas_count(c: &CanvasSpec) -> usize {
    if c.kind == CanvasKind::White {
        1
    } else {
        c.n
    }
}

/// The searches of one group: one per canvas (kind and rank), in the spec's order.
fn search_units(grid: &Grid<'_>, setting: &SettingSpec, prepare_id: &str, g: &Group) -> Vec<Unit> {
    let s = &grid.spec.spec;
    let q = &s.search;
    let mut out = Vec::new();
    for c in q.canvases.get_ref() {
        for rank in 0..canvas_count(c) {
            let p = SearchParams {
                setting: setting.name.clone(),
                prepare_id: prepare_id.to_string(),
                class: g.class,
                canvas_kind: c.kind,
                canvas_rank: rank,
                alpha: g.alpha,
                objective: g.objective,
                epochs: *q.epochs.get_ref(),
                batch: *q.batch.get_ref(),
                lr: *q.lr.get_ref(),
                subset_fraction: *q.subset_fraction.get_ref(),
                seed: s.seed,
                variant: g.variant,
            };
            out.push(unit(
                UnitKind::Search,
                UnitParams::Search(p),
                vec![prepare_id.to_string()],
            ));
        }
    }
    out
}

/// The evaluation of one group, reading its searches (`search_ids`) at every size.
fn evaluate_unit(
    grid: &Grid<'_>,
    setting: &SettingSpec,
    prepare_id: &str,
    g: &Group,
    search_ids: Vec<String>,
) -> Unit {
    let s = &grid.spec.spec;
    let q = &s.search;
    let e = EvaluateParams {
        setting: setting.name.clone(),
        prepare_id: prepare_id.to_string(),
        class: g.class,
        alpha: g.alpha,
        objective: g.objective,
        sizes: q.sizes.get_ref().clone(),
        subset_fraction: *q.subset_fraction.get_ref(),
        seed: s.seed,
        variant: g.variant,
        search_ids: search_ids.clone(),
    };
    unit(UnitKind::Evaluate, UnitParams::Evaluate(e), search_ids)
}

/// A setting's baselines (with `[baselines]`): for each class, a UAP per ε, then Grad-CAM
/// patches on the search's canvases.
fn baseline_units(grid: &Grid<'_>, setting: &SettingSpec, prepare_id: &str) -> Vec<Unit> {
    let s = &grid.spec.spec;
    let q = &s.search;
    let Some(b) = &s.baselines else {
        return vec![];
    };
    let baseline = |p: BaselineParams| {
        unit(
            UnitKind::Baseline,
            UnitParams::Baseline(p),
            vec![prepare_id.to_string()],
        )
    };
    let mut out = Vec::new();
    for &class in &grid.classes {
        let base = BaselineParams {
            setting: setting.name.clone(),
            prepare_id: prepare_id.to_string(),
            class,
            method: String::new(),
            eps: None,
            size: None,
            canvases: vec![],
            subset_fraction: *q.subset_fraction.get_ref(),
            seed: s.seed,
        };
        for &eps in &b.uap_eps {
            out.push(baseline(BaselineParams {
                method: "uap".into(),
                eps: Some(eps / 255.0),
                ..base.clone()
            }));
        }
        if b.gradcam {
            let canvases = q
                .canvases
                .get_ref()
                .iter()
                .flat_map(|c| (0..canvas_count(c)).map(move |r| (c.kind, r)))
                .collect();
            out.push(baseline(BaselineParams {
                method: "gradcam".into(),
                size: Some(b.gradcam_size),
                canvases,
                ..base.clone()
            }));
        }
    }
    out
}

/// The sweep's one audit (in a population with settings): every setting's prepare unit, and its
/// scan, cleanse, max-margin and uap-scan units' detections.
fn audit_unit(spec: &LoadedSpec, plans: &[SettingPlan]) -> Option<Unit> {
    let s = &spec.spec;
    let pop = s.population.as_ref()?;
    if plans.is_empty() {
        return None;
    }
    let of = |kind: UnitKind| -> Vec<String> {
        plans
            .iter()
            .flat_map(|p| p.finishing.iter().filter(move |u| u.kind == kind))
            .map(|u| u.id.clone())
            .collect()
    };
    let p = AuditParams {
        prepares: plans.iter().map(|p| p.prepare.id.clone()).collect(),
        detections: [
            of(UnitKind::Scan),
            of(UnitKind::Cleanse),
            of(UnitKind::MaxMargin),
            of(UnitKind::UapScan),
        ]
        .concat(),
        calibration_share: pop.get_ref().calibration_share,
        seed: s.seed,
        method: crate::audit::METHOD,
    };
    let deps = [p.prepares.clone(), p.detections.clone()].concat();
    Some(unit(UnitKind::Audit, UnitParams::Audit(p), deps))
}
