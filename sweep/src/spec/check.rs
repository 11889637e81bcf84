//! The checks of a parsed spec that need no data: impossible values are refused with the key and
//! its line (class indices are checked once the data is known, in `check_classes`).

use super::{Classes, DataKind, LoadedSpec};
use crate::Result;

impl LoadedSpec {
    /// Every check that needs no data, in the spec's order; the first failure is returned.
    pub(super) fn check(&self) -> Result<()> {
        let s = &self.spec;
        if let Some(why) = iscp_proto::refuse_folder_name(s.name.get_ref()) {
            return self.err(s.name.span(), "name", why);
        }
        self.check_data_section()?;
        self.check_search_numbers()?;
        self.check_search_lists()?;
        self.check_scan()?;
        self.check_baselines()?;
        self.check_transfer()?;
        if s.run.batch_searches == Some(0) || s.run.eval_batch == Some(0) {
            return self.err(
                0..0,
                "run.batch_searches",
                "run.batch_searches and run.eval_batch must be at least 1",
            );
        }
        if s.settings.get_ref().is_empty() && s.population.is_none() {
            return self.err(
                s.settings.span(),
                "settings",
                "give at least one setting, or a [population]",
            );
        }
        if let Some(p) = &s.population {
            self.check_population(p)?;
        }
        self.check_bounds()?;
        self.check_settings()
    }

    /// `[data]`: the folder its kind reads, and an image folder's crop and training data.
    fn check_data_section(&self) -> Result<()> {
        let s = &self.spec;
        let d = &s.data;
        match (&d.path, d.kind) {
            (None, DataKind::Synthetic) => {}
            (None, _) => {
                return self.err(
                    0..0,
                    "data.path",
                    "missing: this data kind reads files from a folder",
                )
            }
            (Some(p), _) if self.check_files && !p.get_ref().exists() => {
                return self.err(
                    p.span(),
                    "data.path",
                    format!("{} does not exist", p.get_ref().display()),
                )
            }
            _ => {}
        }
        if d.kind == DataKind::ImageFolder {
            let (resize, crop) = (d.resize.unwrap_or(256), d.crop.unwrap_or(224));
            if crop == 0 || resize < crop {
                return self.err(
                    0..0,
                    "data.crop",
                    format!("crop {crop} must be above 0 and at most resize {resize}"),
                );
            }
            if let Some(p) = &d.train_path {
                if self.check_files && !p.get_ref().exists() {
                    return self.err(
                        p.span(),
                        "data.train_path",
                        format!("{} does not exist", p.get_ref().display()),
                    );
                }
            } else if let Some(i) = s
                .settings
                .get_ref()
                .iter()
                .position(|st| st.model.is_none())
            {
                return self.err(
                    s.settings.span(),
                    &format!("settings[{i}].model"),
                    "an image-folder spec without data.train_path can only import models: give a TorchScript `model`",
                );
            }
        }
        Ok(())
    }

    /// `[search]`'s sizes, alphas, subset fraction, epochs, batch and learning rate.
    fn check_search_numbers(&self) -> Result<()> {
        let s = &self.spec;
        let sizes = &s.search.sizes;
        if sizes.get_ref().is_empty() {
            return self.err(sizes.span(), "search.sizes", "give at least one size");
        }
        if let Some(bad) = sizes.get_ref().iter().find(|&&v| !(v > 0.0 && v <= 1.0)) {
            return self.err(
                sizes.span(),
                "search.sizes",
                format!("size {bad} is impossible: sizes are fractions in (0, 1]"),
            );
        }
        let alphas = &s.search.alphas;
        if alphas.get_ref().is_empty()
            || alphas.get_ref().iter().any(|&a| !(0.0..=1.0).contains(&a))
        {
            return self.err(
                alphas.span(),
                "search.alphas",
                "give one or more alphas in [0, 1]",
            );
        }
        let f = &s.search.subset_fraction;
        if !(*f.get_ref() > 0.0 && *f.get_ref() < 1.0) {
            return self.err(
                f.span(),
                "search.subset_fraction",
                "must lie strictly between 0 and 1",
            );
        }
        for (key, v) in [
            ("search.epochs", &s.search.epochs),
            ("search.batch", &s.search.batch),
        ] {
            if *v.get_ref() == 0 {
                return self.err(v.span(), key, "must be at least 1");
            }
        }
        if *s.search.lr.get_ref() <= 0.0 {
            return self.err(s.search.lr.span(), "search.lr", "must be positive");
        }
        Ok(())
    }

    /// `[search]`'s canvases, total-variation betas, learned canvas, objectives and classes.
    fn check_search_lists(&self) -> Result<()> {
        let s = &self.spec;
        if s.search.canvases.get_ref().is_empty()
            || s.search.canvases.get_ref().iter().any(|c| c.n == 0)
        {
            return self.err(
                s.search.canvases.span(),
                "search.canvases",
                "give at least one canvas kind, each with n ≥ 1",
            );
        }
        let tv = &s.search.tv_betas;
        if tv.get_ref().is_empty() || tv.get_ref().iter().any(|&b| !(b >= 0.0 && b.is_finite())) {
            return self.err(
                tv.span(),
                "search.tv_betas",
                "give one or more β ≥ 0 (0 = no total variation)",
            );
        }
        if s.search.learned_canvas.is_empty() {
            return self.err(
                0..0,
                "search.learned_canvas",
                "give [false], [true] or [false, true]",
            );
        }
        if s.search.objectives.is_empty() {
            return self.err(0..0, "search.objectives", "give at least one objective");
        }
        if let Classes::Keyword(k) = s.search.classes.get_ref() {
            if k != "all" {
                return self.err(
                    s.search.classes.span(),
                    "search.classes",
                    format!("`{k}`: use \"all\" or a list of class indices"),
                );
            }
        }
        Ok(())
    }

    /// `[scan]`'s size is one of the search sizes (0.01 for a population without `[scan]`).
    fn check_scan(&self) -> Result<()> {
        let s = &self.spec;
        let sizes = &s.search.sizes;
        if let Some(scan) = &s.scan {
            let v = *scan.size.get_ref();
            if !sizes.get_ref().iter().any(|&x| (x - v).abs() < 1e-12) {
                return self.err(
                    scan.size.span(),
                    "scan.size",
                    format!("{v} is not one of search.sizes {:?}", sizes.get_ref()),
                );
            }
        }
        if s.scan.is_none()
            && s.population.is_some()
            && !sizes.get_ref().iter().any(|&x| (x - 0.01).abs() < 1e-12)
        {
            return self.err(
                sizes.span(),
                "search.sizes",
                "a population is scanned at size 0.01: include it, or set [scan] size",
            );
        }
        Ok(())
    }

    /// `[baselines]`: UAP epsilons and the Grad-CAM size.
    fn check_baselines(&self) -> Result<()> {
        if let Some(b) = &self.spec.baselines {
            if b.uap_eps.iter().any(|&e| !(e > 0.0 && e <= 255.0))
                || !(b.gradcam_size > 0.0 && b.gradcam_size <= 1.0)
            {
                return self.err(
                    0..0,
                    "baselines",
                    "uap_eps are in (0, 255] (units of 1/255) and gradcam_size in (0, 1]",
                );
            }
        }
        Ok(())
    }

    /// `[[transfer]]`: both ends name a setting (or one a `targets` setting expands to).
    fn check_transfer(&self) -> Result<()> {
        let s = &self.spec;
        for (i, t) in s.transfer.get_ref().iter().enumerate() {
            for name in [&t.from, &t.to] {
                let known = s.settings.get_ref().iter().any(|st| {
                    &st.name == name
                        || (st.targets.is_some()
                            && name
                                .strip_prefix(&format!("{}-target", st.name))
                                .is_some_and(|k| k.parse::<i64>().is_ok()))
                });
                if !known {
                    return self.err(
                        s.transfer.span(),
                        &format!("transfer[{i}]"),
                        format!("`{name}` is not a setting of this spec"),
                    );
                }
            }
        }
        Ok(())
    }

    /// `[population]`: its counts, lists, ranges and the `given` folder and manifest.
    fn check_population(&self, p: &toml::Spanned<super::PopulationSpec>) -> Result<()> {
        let (span, q) = (p.span(), p.get_ref());
        let bad = |key: &str, why: &str| self.err(span.clone(), &format!("population.{key}"), why);
        self.check_population_counts(q)?;
        if q.clean + q.badnets == 0 && q.given.is_none() {
            return bad(
                "clean",
                "give generated models (clean, badnets) or a `given` folder",
            );
        }
        if let Classes::List(_) = self.spec.search.classes.get_ref() {
            return self.err(
                self.spec.search.classes.span(),
                "search.classes",
                "a population's scans compare every class (Neural Cleanse reverses every label): use \"all\"",
            );
        }
        if q.archs.is_empty() || q.archs.contains(&iscp_engine::model::Arch::Torchscript) {
            return bad(
                "archs",
                "give built-in architectures to train (small-cnn, gap-cnn, resnet-small, resnet18, resnet50)",
            );
        }
        if let Some(a) = q.train_by_arch.keys().find(|a| !q.archs.contains(a)) {
            return bad(
                "train_by_arch",
                &format!(
                    "`{}` is not among population.archs: its training would never be used",
                    a.name()
                ),
            );
        }
        if q.families.is_empty() {
            return bad(
                "families",
                "give at least one trigger family (patch, sparse, blend, sig, warp)",
            );
        }
        if q.triggers.is_empty() {
            return bad("triggers", "give at least one trigger kind");
        }
        if q.positions.is_empty() {
            return bad("positions", "give at least one position");
        }
        if q.augment.is_empty() {
            return bad("augment", "give [false], [true] or [false, true]");
        }
        let [lo, hi] = q.trigger_sizes;
        if !(1 <= lo && lo <= hi && hi <= 16) {
            return bad(
                "trigger_sizes",
                "give [smallest, largest] sides, 1 ≤ smallest ≤ largest ≤ 16",
            );
        }
        let [rlo, rhi] = q.poison_rates;
        if !(0.0 < rlo && rlo <= rhi && rhi < 1.0) {
            return bad(
                "poison_rates",
                "give [lowest, highest] with 0 < lowest ≤ highest < 1",
            );
        }
        if !(0.0..1.0).contains(&q.calibration_share) {
            return bad("calibration_share", "must lie in [0, 1)");
        }
        if q.cleanse.epochs == 0 || q.cleanse.batch == 0 || q.cleanse.images == Some(0) {
            return bad("cleanse", "epochs, batch and images must be at least 1");
        }
        if q.cleanse.schedules.is_empty() {
            return bad("cleanse", "give at least one schedule (short, original)");
        }
        let u = &q.uap;
        if u.epochs == 0 || u.batch == 0 || u.images == 0 || !(u.eps > 0.0 && u.eps <= 1.0) {
            return bad(
                "uap",
                "epochs, batch and images must be at least 1 and eps in (0, 1]",
            );
        }
        let m = &q.margin;
        if m.starts == 0 || m.steps == 0 || !(m.lr.is_finite() && m.lr > 0.0) {
            return bad(
                "margin",
                "starts and steps must be at least 1 and lr a positive number",
            );
        }
        if let Some(g) = &q.given {
            if self.check_files && !g.get_ref().is_dir() {
                return self.err(
                    g.span(),
                    "population.given",
                    format!("{} is not a folder", g.get_ref().display()),
                );
            }
        }
        if let Some(m) = &q.manifest {
            if q.given.is_none() {
                return self.err(
                    m.span(),
                    "population.manifest",
                    "a manifest needs a `given` folder",
                );
            }
        }
        Ok(())
    }

    /// Every setting's name, the population's included, is unique.
    pub(super) fn check_names(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for st in self.settings(1) {
            if !seen.insert(st.name.clone()) {
                return self.err(
                    self.spec.settings.span(),
                    "settings",
                    format!("`{}` names two settings (a population's models are named clean-NNN, badnets-NNN and given-<file>)", st.name),
                );
            }
        }
        Ok(())
    }
}
