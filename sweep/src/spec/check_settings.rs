//! The checks of each `[[settings]]` entry that need no data: its name, files, derivation and targets.

use super::{Classes, LoadedSpec, SettingKind, SettingSpec};
use crate::Result;

impl LoadedSpec {
    /// Every written setting, in order: a unique folder-safe name, then its own keys.
    pub(super) fn check_settings(&self) -> Result<()> {
        let s = &self.spec;
        let mut names = std::collections::HashSet::new();
        for (i, st) in s.settings.get_ref().iter().enumerate() {
            if !names.insert(&st.name) || st.name.is_empty() {
                return self.err(
                    s.settings.span(),
                    &format!("settings[{i}].name"),
                    format!("`{}` is empty or used twice", st.name),
                );
            }
            if let Some(why) = iscp_proto::refuse_folder_name(&st.name) {
                return self.err(
                    s.settings.span(),
                    &format!("settings[{i}].name"),
                    format!("`{}`: {why}", st.name.escape_debug()),
                );
            }
            self.check_setting_files(i, st)?;
            self.check_setting_derive(i, st)?;
            self.check_setting_targets(i, st)?;
        }
        Ok(())
    }

    /// Setting `i`'s TorchScript `model`, its `gradcam_methods` and its `train_tensors`.
    fn check_setting_files(&self, i: usize, st: &SettingSpec) -> Result<()> {
        let s = &self.spec;
        if let Some(p) = &st.model {
            let why = match std::fs::metadata(p.get_ref()) {
                _ if !self.check_files => None,
                Err(_) => Some("does not exist"),
                Ok(m) if m.len() == 0 => Some("is empty (0 bytes): not a TorchScript model"),
                Ok(_) => None,
            };
            if let Some(why) = why {
                return self.err(
                    p.span(),
                    &format!("settings[{i}].model"),
                    format!("{} {why}", p.get_ref().display()),
                );
            }
        }
        if let Some(g) = &st.gradcam_methods {
            if g.len() != 2 || st.model.is_none() {
                return self.err(
                    s.settings.span(),
                    &format!("settings[{i}].gradcam_methods"),
                    "give [features, head] method names, for a setting with a TorchScript `model`",
                );
            }
        }
        if let Some(p) = &st.train_tensors {
            let key = format!("settings[{i}].train_tensors");
            if st.model.is_some() {
                return self.err(p.span(), &key, "a TorchScript `model` is not trained");
            }
            for f in ["CIFAR_ims", "CIFAR_lab"] {
                if self.check_files && !p.get_ref().join(f).exists() {
                    return self.err(
                        p.span(),
                        &key,
                        format!("{} has no `{f}` file", p.get_ref().display()),
                    );
                }
            }
        }
        Ok(())
    }

    /// Setting `i`'s `derive`: a trainable setting derived from another plain one, with sane steps.
    fn check_setting_derive(&self, i: usize, st: &SettingSpec) -> Result<()> {
        let s = &self.spec;
        if let Some(d) = &st.derive {
            let key = format!("settings[{i}].derive");
            let dv = d.get_ref();
            let source = s.settings.get_ref().iter().find(|o| o.name == dv.from);
            let why = if st.model.is_some() || st.train_tensors.is_some() {
                Some(
                    "a setting with `model` or `train_tensors` is not trained on derived data"
                        .to_string(),
                )
            } else if dv.from == st.name {
                Some("`from` names this setting itself".into())
            } else if source.is_none() {
                Some(format!(
                    "`from`: `{}` is not a setting of this spec",
                    dv.from
                ))
            } else if source.is_some_and(|o| o.model.is_some() && o.gradcam_methods.is_none()) {
                Some(format!("`from`: `{}` is a TorchScript model; its representation needs `gradcam_methods` ([features, head])", dv.from))
            } else if source.is_some_and(|o| o.derive.is_some() || o.targets.is_some()) {
                Some(format!(
                    "`from`: `{}` is itself derived or expands to several models",
                    dv.from
                ))
            } else if dv.steps == 0 || dv.shard == 0 || dv.batch == 0 || dv.images == Some(0) {
                Some("steps, shard, batch and images must be at least 1".into())
            } else if !(dv.step_size > 0.0 && dv.step_size.is_finite()) {
                Some("step_size must be a positive number".into())
            } else {
                None
            };
            if let Some(why) = why {
                return self.err(d.span(), &key, why);
            }
        }
        Ok(())
    }

    /// Setting `i`'s `targets` (a trained BadNets setting's classes) and its `poison_rate`.
    fn check_setting_targets(&self, i: usize, st: &SettingSpec) -> Result<()> {
        if let Some(t) = &st.targets {
            let key = format!("settings[{i}].targets");
            if st.kind != SettingKind::Badnets || st.target.is_some() || st.model.is_some() {
                return self.err(
                    t.span(),
                    &key,
                    "only for a trained `badnets` setting, instead of `target`",
                );
            }
            if let Classes::Keyword(k) = t.get_ref() {
                if k != "all" {
                    return self.err(t.span(), &key, "give \"all\" or a list of classes");
                }
            }
        }
        if let Some(r) = &st.poison_rate {
            if !(*r.get_ref() > 0.0 && *r.get_ref() < 1.0) {
                return self.err(
                    r.span(),
                    &format!("settings[{i}].poison_rate"),
                    "must lie strictly between 0 and 1",
                );
            }
        }
        Ok(())
    }
}
