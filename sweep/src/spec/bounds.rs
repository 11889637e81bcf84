//! The spec's counts, sizes and numbers held to `limits` at submit, before anything is allocated
//! from them: first those that need no data (`check_bounds`), then, once the data's shape is known,
//! the plan's size and the values that depend on the image (`check_data`, in `bounds_data`).

use super::limits::*;
use super::{Classes, DataKind, DataSpec, LoadedSpec, TrainSpec};
use crate::Result;

/// Units and estimated bytes of a plan, counted without expanding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSize {
    pub models: u64,
    pub units: u64,
    pub bytes: u64,
}

impl LoadedSpec {
    /// Refuses `value` above `max` under `key`, saying what the limit protects.
    pub(super) fn at_most(&self, key: &str, value: u64, max: u64, what: &str) -> Result<()> {
        if value > max {
            return self.err(
                0..0,
                key,
                format!("{value} is above the limit of {max} {what}"),
            );
        }
        Ok(())
    }

    /// Refuses a count outside `lo..=hi`.
    pub(super) fn within(&self, key: &str, value: u64, lo: u64, hi: u64, what: &str) -> Result<()> {
        if value < lo || value > hi {
            return self.err(0..0, key, format!("{value} is outside {lo}–{hi} {what}"));
        }
        Ok(())
    }

    /// A number that must be finite and positive.
    fn positive(&self, key: &str, v: f64) -> Result<()> {
        if !(v.is_finite() && v > 0.0) {
            return self.err(0..0, key, format!("{v} must be a finite number above 0"));
        }
        Ok(())
    }

    /// Refuses a training block's epochs, batch, lr, momentum or weight decay out of bounds.
    fn check_train(&self, prefix: &str, t: &TrainSpec) -> Result<()> {
        if let Some(e) = t.epochs {
            self.within(
                &format!("{prefix}.epochs"),
                e as u64,
                1,
                MAX_EPOCHS as u64,
                "epochs",
            )?;
        }
        if let Some(b) = t.batch {
            self.within(
                &format!("{prefix}.batch"),
                b as u64,
                1,
                MAX_BATCH as u64,
                "images",
            )?;
        }
        if let Some(lr) = t.lr {
            self.positive(&format!("{prefix}.lr"), lr)?;
        }
        if let Some(m) = t.momentum {
            if !(0.0..1.0).contains(&m) {
                return self.err(
                    0..0,
                    &format!("{prefix}.momentum"),
                    format!("{m} must lie in [0, 1)"),
                );
            }
        }
        if let Some(w) = t.weight_decay {
            if !(w.is_finite() && w >= 0.0) {
                return self.err(
                    0..0,
                    &format!("{prefix}.weight_decay"),
                    format!("{w} must be a finite number ≥ 0"),
                );
            }
        }
        Ok(())
    }

    /// Limits that need no data: list lengths, counts, image sizes, hyper-parameters.
    pub(super) fn check_bounds(&self) -> Result<()> {
        self.check_data_bounds()?;
        self.check_search_bounds()?;
        self.check_run_bounds()?;
        self.check_settings_bounds()?;
        self.check_population_bounds()
    }

    /// `[data]`: class names and counts, then the limits of its kind.
    fn check_data_bounds(&self) -> Result<()> {
        let d = &self.spec.data;
        if let Some(names) = &d.class_names {
            self.at_most(
                "data.class_names",
                names.len() as u64,
                MAX_CLASSES as u64,
                "classes",
            )?;
            for (i, n) in names.iter().enumerate() {
                if let Some(why) = refuse_display_name(n) {
                    return self.err(0..0, "data.class_names", format!("name {i} {why}"));
                }
            }
        }
        if let Some(c) = d.classes {
            self.at_most("data.classes", c as u64, MAX_CLASSES as u64, "classes")?;
        }
        if d.kind == DataKind::Synthetic {
            self.check_synthetic_bounds(d)?;
        }
        if d.kind == DataKind::ImageFolder {
            self.check_image_folder_bounds(d)?;
        }
        Ok(())
    }

    /// Generated shapes: classes, side, channels, image counts and the bytes a worker holds.
    fn check_synthetic_bounds(&self, d: &DataSpec) -> Result<()> {
        let def = iscp_engine::data::SyntheticConfig::default();
        let (lo, hi) = (
            *SYNTHETIC_CLASSES.start() as u64,
            *SYNTHETIC_CLASSES.end() as u64,
        );
        self.within(
            "data.classes",
            d.classes.unwrap_or(def.classes) as u64,
            lo,
            hi,
            "classes of generated shapes",
        )?;
        let (lo, hi) = (*SYNTHETIC_SIDE.start() as u64, *SYNTHETIC_SIDE.end() as u64);
        let side = d.size.unwrap_or(def.size) as u64;
        self.within("data.size", side, lo, hi, "pixels")?;
        let ch = d.channels.unwrap_or(def.channels);
        if ch != 1 && ch != 3 {
            return self.err(0..0, "data.channels", format!("{ch}: give 1 or 3"));
        }
        let (train, test) = (
            d.train.unwrap_or(def.train) as u64,
            d.test.unwrap_or(def.test) as u64,
        );
        self.within("data.train", train, 1, MAX_IMAGES, "images")?;
        self.within("data.test", test, 1, MAX_IMAGES, "images")?;
        let bytes = (train + test) * ch as u64 * side * side * 4;
        self.at_most(
            "data.size",
            bytes,
            MAX_DATA_BYTES,
            "bytes of images a worker holds (train + test × channels × size² × 4)",
        )?;
        Ok(())
    }

    /// An image folder: resize and crop sides, and the test images a worker holds.
    fn check_image_folder_bounds(&self, d: &DataSpec) -> Result<()> {
        let (resize, crop) = (d.resize.unwrap_or(256) as u64, d.crop.unwrap_or(224) as u64);
        self.at_most("data.resize", resize, MAX_IMAGE_SIDE as u64, "pixels")?;
        self.at_most("data.crop", crop, MAX_IMAGE_SIDE as u64, "pixels")?;
        if let (Some(c), Some(p)) = (d.classes, d.per_class) {
            let images = (c as u64).saturating_mul(p as u64);
            self.within(
                "data.per_class",
                images,
                1,
                MAX_IMAGES,
                "images (classes × per_class)",
            )?;
            let bytes = images.saturating_mul(3 * crop * crop * 4);
            self.at_most(
                "data.per_class",
                bytes,
                MAX_DATA_BYTES,
                "bytes of test images a worker holds",
            )?;
        }
        Ok(())
    }

    /// `[search]` (and the other lists' lengths): entries, classes, canvases, epochs, batch, lr.
    fn check_search_bounds(&self) -> Result<()> {
        let s = &self.spec;
        let q = &s.search;
        for (key, len) in [
            ("search.sizes", q.sizes.get_ref().len()),
            ("search.alphas", q.alphas.get_ref().len()),
            ("search.tv_betas", q.tv_betas.get_ref().len()),
            ("search.canvases", q.canvases.get_ref().len()),
            ("search.objectives", q.objectives.len()),
            ("search.learned_canvas", q.learned_canvas.len()),
            (
                "baselines.uap_eps",
                s.baselines.as_ref().map_or(0, |b| b.uap_eps.len()),
            ),
            ("transfer", s.transfer.get_ref().len()),
            ("settings", s.settings.get_ref().len()),
        ] {
            self.at_most(key, len as u64, MAX_LIST as u64, "entries")?;
        }
        if let Classes::List(l) = q.classes.get_ref() {
            self.at_most(
                "search.classes",
                l.len() as u64,
                MAX_CLASSES as u64,
                "classes",
            )?;
        }
        if let Some(c) = q.canvases.get_ref().iter().find(|c| c.n > MAX_CANVASES) {
            self.at_most(
                "search.canvases",
                c.n as u64,
                MAX_CANVASES as u64,
                "canvases of one kind",
            )?;
        }
        self.at_most(
            "search.epochs",
            *q.epochs.get_ref() as u64,
            MAX_EPOCHS as u64,
            "epochs",
        )?;
        self.at_most(
            "search.batch",
            *q.batch.get_ref() as u64,
            MAX_BATCH as u64,
            "images",
        )?;
        self.positive("search.lr", *q.lr.get_ref())?;
        Ok(())
    }

    /// `[run]`: the device, evaluation batch, batched searches and threads.
    fn check_run_bounds(&self) -> Result<()> {
        let r = &self.spec.run;
        iscp_engine::parse_device(&r.device).or_else(|e| self.err(0..0, "run.device", e))?;
        if let Some(b) = r.eval_batch {
            self.at_most("run.eval_batch", b as u64, MAX_EVAL_BATCH as u64, "images")?;
        }
        if let Some(b) = r.batch_searches {
            self.at_most(
                "run.batch_searches",
                b as u64,
                MAX_BATCH_SEARCHES as u64,
                "units",
            )?;
        }
        if let Some(t) = r.threads {
            self.within("run.threads", t as u64, 1, MAX_THREADS as u64, "threads")?;
        }
        Ok(())
    }

    /// Each written setting: name, training, trigger size, normalization and derivation.
    fn check_settings_bounds(&self) -> Result<()> {
        for (i, st) in self.spec.settings.get_ref().iter().enumerate() {
            if let Some(why) = refuse_display_name(&st.name) {
                return self.err(0..0, &format!("settings[{i}].name"), why);
            }
            self.check_train(&format!("settings[{i}].train"), &st.train)?;
            if let Some(k) = st.trigger_size {
                if !TRIGGER_SIDE.contains(&k) {
                    return self.err(
                        0..0,
                        &format!("settings[{i}].trigger_size"),
                        format!(
                            "{k} is outside {}–{} pixels",
                            TRIGGER_SIDE.start(),
                            TRIGGER_SIDE.end()
                        ),
                    );
                }
            }
            if let Some(n) = &st.normalize {
                self.check_normalize(&format!("settings[{i}].normalize"), n)?;
            }
            if let Some(dv) = &st.derive {
                let dv = dv.get_ref();
                let key = format!("settings[{i}].derive");
                self.at_most(
                    &format!("{key}.steps"),
                    dv.steps as u64,
                    MAX_DERIVE_STEPS as u64,
                    "steps",
                )?;
                self.at_most(
                    &format!("{key}.batch"),
                    dv.batch as u64,
                    MAX_BATCH as u64,
                    "images",
                )?;
                self.at_most(
                    &format!("{key}.shard"),
                    dv.shard as u64,
                    MAX_IMAGES,
                    "images",
                )?;
            }
        }
        Ok(())
    }

    /// `[population]`: list lengths, training, cleanse epochs and batch, normalization.
    fn check_population_bounds(&self) -> Result<()> {
        if let Some(p) = &self.spec.population {
            let p = p.get_ref();
            for (key, len) in [
                ("population.archs", p.archs.len()),
                ("population.families", p.families.len()),
                ("population.cleanse.schedules", p.cleanse.schedules.len()),
                ("population.triggers", p.triggers.len()),
                ("population.positions", p.positions.len()),
                ("population.augment", p.augment.len()),
            ] {
                self.at_most(key, len as u64, MAX_LIST as u64, "entries")?;
            }
            self.check_train("population.train", &p.train)?;
            for (arch, t) in &p.train_by_arch {
                self.check_train(&format!("population.train_by_arch.{}", arch.name()), t)?;
            }
            let c = &p.cleanse;
            self.at_most(
                "population.cleanse.epochs",
                c.epochs as u64,
                MAX_EPOCHS as u64,
                "epochs",
            )?;
            self.at_most(
                "population.cleanse.batch",
                c.batch as u64,
                MAX_BATCH as u64,
                "images",
            )?;
            self.at_most(
                "population.margin.starts",
                p.margin.starts as u64,
                MAX_MARGIN_STARTS as u64,
                "starts",
            )?;
            self.at_most(
                "population.margin.steps",
                p.margin.steps as u64,
                MAX_MARGIN_STEPS as u64,
                "steps",
            )?;
            self.at_most(
                "population.uap.epochs",
                p.uap.epochs as u64,
                MAX_EPOCHS as u64,
                "epochs",
            )?;
            self.at_most(
                "population.uap.batch",
                p.uap.batch as u64,
                MAX_BATCH as u64,
                "images",
            )?;
            self.at_most(
                "population.uap.images",
                p.uap.images as u64,
                MAX_IMAGES,
                "images",
            )?;
            if let Some(n) = &p.normalize {
                self.check_normalize("population.normalize", n)?;
            }
        }
        Ok(())
    }

    /// The population's model counts, before anything adds them up or generates them.
    pub(super) fn check_population_counts(&self, p: &super::PopulationSpec) -> Result<()> {
        self.at_most("population.clean", p.clean as u64, MAX_MODELS, "models")?;
        self.at_most("population.badnets", p.badnets as u64, MAX_MODELS, "models")?;
        let both = p.clean as u64 + p.badnets as u64;
        self.at_most(
            "population.badnets",
            both,
            MAX_MODELS,
            "models (clean + badnets)",
        )
    }

    /// Refuses a normalization without one finite mean and positive std per channel.
    fn check_normalize(&self, key: &str, n: &iscp_engine::model::Normalize) -> Result<()> {
        let ok = !n.mean.is_empty()
            && n.mean.len() == n.std.len()
            && n.mean.len() <= 4
            && n.mean.iter().all(|m| m.is_finite())
            && n.std.iter().all(|s| s.is_finite() && *s > 0.0);
        if !ok {
            return self.err(
                0..0,
                key,
                "give mean and std of equal length (one per channel), finite, std above 0",
            );
        }
        Ok(())
    }
}
