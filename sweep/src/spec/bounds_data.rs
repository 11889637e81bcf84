//! The limits that need the data's shape (`check_data`), with the plan's size they hold (`plan_size`).

use super::limits::*;
use super::{Classes, LoadedSpec, PlanSize};
use crate::cost::DataShape;
use crate::Result;
use iscp_engine::canvas::CanvasKind;

impl LoadedSpec {
    /// The number of models, units and estimated bytes of the plan, without expanding it (every
    /// product saturates, so a hostile spec cannot overflow it).
    pub fn plan_size(&self, num_classes: usize, train: usize) -> PlanSize {
        let s = &self.spec;
        let q = &s.search;
        let classes = match q.classes.get_ref() {
            Classes::List(l) => l.len() as u64,
            Classes::Keyword(_) => num_classes as u64,
        };
        let (models, derives) = self.plan_models(num_classes, train);
        let canvases = self.plan_canvases();
        let groups = [
            classes,
            q.alphas.get_ref().len() as u64,
            q.objectives.len() as u64,
            q.tv_betas.get_ref().len() as u64,
            q.learned_canvas.len() as u64,
        ]
        .into_iter()
        .fold(1u64, u64::saturating_mul);
        let searches = groups.saturating_mul(canvases);
        let baselines = s.baselines.as_ref().map_or(0, |b| {
            classes.saturating_mul(b.uap_eps.len() as u64 + b.gradcam as u64)
        });
        // Prepare, pictures, scan, cleanse and transfers per model.
        let finishing = 4 + s.transfer.get_ref().len() as u64;
        let per_model = [searches, groups, baselines, finishing]
            .into_iter()
            .fold(0u64, u64::saturating_add);
        let units = models
            .saturating_mul(per_model)
            .saturating_add(derives)
            .saturating_add(1);
        // About 2.3 KiB a unit (parameters, ledger row, indexes: 1,000,000 noop units measured
        // 2,214 MiB in `bench-coordinator`), plus the lists units carry: every evaluation its
        // sizes and search ids, a model's pictures and scan every id they read.
        let id = 70u64;
        let per_eval = (q.sizes.get_ref().len() as u64)
            .saturating_mul(24)
            .saturating_add(canvases.saturating_mul(id));
        let lists = groups.saturating_mul(per_eval).saturating_add(
            searches
                .saturating_add(groups)
                .saturating_add(baselines)
                .saturating_mul(3 * id),
        );
        let bytes = units
            .saturating_mul(2_300)
            .saturating_add(models.saturating_mul(lists));
        PlanSize {
            models,
            units,
            bytes,
        }
    }

    /// The plan's models (settings after `targets`, plus the population) and derive units.
    fn plan_models(&self, num_classes: usize, train: usize) -> (u64, u64) {
        let s = &self.spec;
        let mut models = 0u64;
        let mut derives = 0u64;
        for st in s.settings.get_ref() {
            let n = match st.targets.as_ref().map(|t| t.get_ref()) {
                Some(Classes::List(l)) => l.len() as u64,
                Some(Classes::Keyword(_)) => num_classes as u64,
                None => 1,
            };
            models = models.saturating_add(n);
            if let Some(d) = &st.derive {
                let d = d.get_ref();
                let images = d.images.map_or(train, |i| i.min(train)) as u64;
                derives = derives
                    .saturating_add(images.div_ceil(d.shard.max(1) as u64).saturating_mul(n));
            }
        }
        if let Some(p) = &s.population {
            let p = p.get_ref();
            models = models
                .saturating_add(p.clean as u64)
                .saturating_add(p.badnets as u64)
                .saturating_add(self.given.len() as u64);
        }
        (models, derives)
    }

    /// The canvases one search group runs (a white canvas once, whatever its `n`).
    fn plan_canvases(&self) -> u64 {
        self.spec
            .search
            .canvases
            .get_ref()
            .iter()
            .map(|c| {
                if c.kind == CanvasKind::White {
                    1
                } else {
                    c.n as u64
                }
            })
            .fold(0, u64::saturating_add)
    }

    /// Checks that need the data's shape: class indices and names, pattern sizes that keep at
    /// least one pixel, triggers that fit the image, and the plan's size against its limits.
    pub fn check_data(&self, shape: &DataShape) -> Result<()> {
        let k = shape.classes;
        self.within(
            "data",
            k as u64,
            1,
            MAX_CLASSES as u64,
            "classes in the data",
        )?;
        self.check_classes(k)?;
        if let Some(names) = &self.spec.data.class_names {
            if names.len() != k {
                return self.err(
                    0..0,
                    "data.class_names",
                    format!("{} names for data with {k} classes", names.len()),
                );
            }
        }
        self.check_sizes_keep_pixels(shape)?;
        self.check_triggers_fit(shape)?;
        self.check_plan_limits(k, shape.train)
    }

    /// Every search size keeps at least one of the image's pixels.
    fn check_sizes_keep_pixels(&self, shape: &DataShape) -> Result<()> {
        let [_, h, w] = shape.image;
        let pixels = (h.max(0) as u64).saturating_mul(w.max(0) as u64);
        let sizes = &self.spec.search.sizes;
        if let Some(bad) = sizes
            .get_ref()
            .iter()
            .find(|&&v| (v * pixels as f64).round() < 1.0)
        {
            return self.err(
                sizes.span(),
                "search.sizes",
                format!(
                    "size {bad} keeps 0 of the image's {h}×{w} pixels (k = round(size × {pixels}))"
                ),
            );
        }
        Ok(())
    }

    /// Settings', the population's and given models' triggers fit the image.
    fn check_triggers_fit(&self, shape: &DataShape) -> Result<()> {
        let [_, h, w] = shape.image;
        let side = h.min(w);
        for (i, st) in self.spec.settings.get_ref().iter().enumerate() {
            if let Some(t) = st.trigger_size {
                if t > side {
                    return self.err(
                        0..0,
                        &format!("settings[{i}].trigger_size"),
                        format!("{t} is larger than the {h}×{w} image"),
                    );
                }
            }
        }
        if let Some(p) = &self.spec.population {
            let [_, hi] = p.get_ref().trigger_sizes;
            if hi > side {
                return self.err(
                    p.span(),
                    "population.trigger_sizes",
                    format!("{hi} is larger than the {h}×{w} image"),
                );
            }
        }
        for st in &self.given {
            if let Some([r, c, t]) = st.trigger_box {
                if r < 0 || c < 0 || t < 1 || r.saturating_add(t) > h || c.saturating_add(t) > w {
                    return self.err(
                        0..0,
                        "population.manifest",
                        format!("{}: trigger box row {r}, column {c}, side {t} does not fit the {h}×{w} image", st.name),
                    );
                }
            }
        }
        Ok(())
    }

    /// The plan's models, units and estimated bytes against their limits.
    fn check_plan_limits(&self, k: usize, train: usize) -> Result<()> {
        let plan = self.plan_size(k, train);
        self.at_most(
            "settings",
            plan.models,
            MAX_MODELS,
            "models (settings after `targets`, plus the population)",
        )?;
        self.at_most("search", plan.units, MAX_UNITS, "units in one sweep (settings × classes × canvases × alphas × objectives × variants, and their evaluations)")?;
        self.at_most(
            "search",
            plan.bytes,
            MAX_PLAN_BYTES,
            "bytes the coordinator would hold for this plan (estimated)",
        )?;
        Ok(())
    }
}
