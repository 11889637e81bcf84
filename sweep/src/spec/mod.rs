//! The experiment spec (TOML): its keys and defaults (`keys`), and the checks that refuse a bad
//! spec before any work starts, naming the key and its line (`check`).

mod bounds;
mod bounds_data;
mod check;
mod check_settings;
mod keys;
pub mod limits;
pub mod population;

pub use bounds::PlanSize;
pub use keys::*;

use crate::{Result, SweepError};
use std::path::Path;

/// A parsed spec with its source text, for turning spans into line numbers.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// Whether files the spec names must exist (not when only planning).
    check_files: bool,
    pub spec: Spec,
    pub file: String,
    pub source: String,
    /// The population's given models (its `given` folder, read when the spec is loaded).
    pub given: Vec<SettingSpec>,
}

impl LoadedSpec {
    /// Reads and parses a spec file; refuses unknown keys and wrong types, then checks values that
    /// need no data (see `check_classes` for those that do).
    pub fn load(path: &Path) -> Result<LoadedSpec> {
        let source = std::fs::read_to_string(path).map_err(|e| SweepError::io(path, e))?;
        Self::parse(&source, &path.display().to_string())
    }

    /// Like `load`, but files the spec names (data, TorchScript models) need not exist yet:
    /// for planning a sweep that will run elsewhere.
    pub fn load_for_plan(path: &Path) -> Result<LoadedSpec> {
        let source = std::fs::read_to_string(path).map_err(|e| SweepError::io(path, e))?;
        Self::parse_with(&source, &path.display().to_string(), false)
    }

    /// Like `parse`, but files the spec names need not exist here (a coordinator checking a spec
    /// whose data lives on the workers' shared volume).
    pub fn parse_for_plan(source: &str, file: &str) -> Result<LoadedSpec> {
        Self::parse_with(source, file, false)
    }

    pub fn parse(source: &str, file: &str) -> Result<LoadedSpec> {
        Self::parse_with(source, file, true)
    }

    fn parse_with(source: &str, file: &str, check_files: bool) -> Result<LoadedSpec> {
        let spec: Spec = toml::from_str(source).map_err(|e| {
            let line = e.span().map(|s| line_of(source, s.start)).unwrap_or(0);
            let mut message = e.message().to_string();
            if message.contains("recursion limit") {
                message = "nested too deeply (a dotted key of too many parts, or tables and \
                           arrays inside each other too many times)"
                    .into();
            }
            let key = match (key_in_message(&message), line) {
                (Some(k), _) => k,
                // No position: the spec as a whole, not its first line's key.
                (None, 0) => "(spec)".into(),
                (None, _) => key_at_line(source, line),
            };
            spec_error(file, line, &key, &message)
        })?;
        let mut loaded = LoadedSpec {
            check_files,
            spec,
            file: file.to_string(),
            source: source.to_string(),
            given: vec![],
        };
        loaded.check()?;
        if let Some(p) = &loaded.spec.population {
            // Read even when only planning: the given files are the population's settings, so the
            // coordinator must see the folder (on a cluster, the shared volume).
            if let Some(folder) = &p.get_ref().given {
                loaded.given = population::given(p.get_ref(), folder.get_ref())
                    .or_else(|e| loaded.err(folder.span(), "population.given", e))?;
            }
        }
        loaded.check_names()?;
        Ok(loaded)
    }

    pub(super) fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl ToString,
    ) -> Result<T> {
        let line = if span.is_empty() && span.start == 0 {
            line_of_key(&self.source, key)
        } else {
            line_of(&self.source, span.start)
        };
        Err(spec_error(&self.file, line, key, &message.to_string()))
    }

    /// Checks class indices (search classes, BadNets targets) once the number of classes is known.
    pub fn check_classes(&self, num_classes: usize) -> Result<()> {
        let k = num_classes as i64;
        if let Classes::List(list) = self.spec.search.classes.get_ref() {
            if list.is_empty() {
                return self.err(
                    self.spec.search.classes.span(),
                    "search.classes",
                    "empty list",
                );
            }
            if let Some(bad) = list.iter().find(|&&c| c < 0 || c >= k) {
                return self.err(
                    self.spec.search.classes.span(),
                    "search.classes",
                    format!(
                        "class {bad} does not exist: the data has classes 0..{}",
                        k - 1
                    ),
                );
            }
        }
        for st in &self.given {
            if let Some(t) = st.target.as_ref().map(|t| *t.get_ref()) {
                if t < 0 || t >= k {
                    return self.err(
                        0..0,
                        "population.manifest",
                        format!(
                            "{}: target {t} does not exist: the data has classes 0..{}",
                            st.name,
                            k - 1
                        ),
                    );
                }
            }
        }
        for (i, st) in self.spec.settings.get_ref().iter().enumerate() {
            if let Some(t) = &st.targets {
                if let Classes::List(list) = t.get_ref() {
                    if let Some(bad) = list.iter().find(|&&c| c < 0 || c >= k) {
                        return self.err(
                            t.span(),
                            &format!("settings[{i}].targets"),
                            format!(
                                "class {bad} does not exist: the data has classes 0..{}",
                                k - 1
                            ),
                        );
                    }
                }
            }
            if let Some(t) = &st.target {
                if *t.get_ref() < 0 || *t.get_ref() >= k {
                    return self.err(
                        t.span(),
                        &format!("settings[{i}].target"),
                        format!(
                            "class {} does not exist: the data has classes 0..{}",
                            t.get_ref(),
                            k - 1
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The settings with every `targets` setting expanded into one setting per target class,
    /// each exactly as if written by hand with that `target` (so its units keep their ids), then
    /// the population's generated and given models.
    pub fn settings(&self, num_classes: usize) -> Vec<SettingSpec> {
        let mut out = self.written_settings(num_classes);
        if let Some(p) = &self.spec.population {
            out.extend(population::generated(
                p.get_ref(),
                self.spec.seed,
                num_classes,
            ));
            out.extend(self.given.iter().cloned());
        }
        out
    }

    /// The pattern size the scans compare: `scan.size`, or 0.01 in a population without `[scan]`.
    pub fn scan_size(&self) -> Option<f64> {
        match (&self.spec.scan, &self.spec.population) {
            (Some(s), _) => Some(*s.size.get_ref()),
            (None, Some(_)) => Some(0.01),
            (None, None) => None,
        }
    }

    fn written_settings(&self, num_classes: usize) -> Vec<SettingSpec> {
        let mut out = Vec::new();
        for st in self.spec.settings.get_ref() {
            let Some(t) = &st.targets else {
                out.push(st.clone());
                continue;
            };
            let targets = match t.get_ref() {
                Classes::List(l) => l.clone(),
                Classes::Keyword(_) => (0..num_classes as i64).collect(),
            };
            for k in targets {
                out.push(SettingSpec {
                    name: format!("{}-target{k}", st.name),
                    target: Some(toml::Spanned::new(0..0, k)),
                    targets: None,
                    ..st.clone()
                });
            }
        }
        out
    }

    /// The class indices searched.
    pub fn classes(&self, num_classes: usize) -> Vec<i64> {
        match self.spec.search.classes.get_ref() {
            Classes::List(l) => l.clone(),
            Classes::Keyword(_) => (0..num_classes as i64).collect(),
        }
    }
}

/// A spec refusal, its key and message cut to a length any client can receive (a hostile spec
/// can have a key of thousands of parts).
fn spec_error(file: &str, line: usize, key: &str, message: &str) -> SweepError {
    fn cut(s: &str, max: usize) -> String {
        match s.char_indices().nth(max) {
            Some((at, _)) => format!("{}…", &s[..at]),
            None => s.to_string(),
        }
    }
    SweepError::Spec {
        file: cut(file, 500),
        line,
        key: cut(key, 200),
        message: cut(message, 2000),
    }
}

/// The 1-based line where `key` (dotted, `settings[2].train.epochs` style) is written, or 0 when
/// it is not written (a default): `[table]` headers, `[[array]]` entries (the index picks the
/// entry) and dotted keys are followed; inline tables are not.
pub fn line_of_key(source: &str, key: &str) -> usize {
    let mut index = None;
    let mut plain = String::new();
    let mut rest = key;
    while let Some(open) = rest.find('[') {
        plain.push_str(&rest[..open]);
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        index = index.or(rest[open + 1..open + close].parse::<usize>().ok());
        rest = &rest[open + close + 1..];
    }
    plain.push_str(rest);
    let mut table = String::new();
    let mut entries = 0usize;
    let mut best = 0;
    for (n, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if let Some(h) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            table = h.trim().to_string();
            if plain.starts_with(&table) && plain[table.len()..].starts_with('.') {
                entries += 1;
            }
            continue;
        }
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = h.trim().to_string();
            if table == plain && best == 0 {
                best = n + 1;
            }
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k: String = k
            .split('.')
            .map(|p| p.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join(".");
        let full = if table.is_empty() {
            k
        } else {
            format!("{table}.{k}")
        };
        let entry_ok = index.is_none_or(|i| entries == i + 1)
            || !plain.starts_with(&table)
            || table.is_empty();
        if entry_ok && (full == plain || plain.starts_with(&format!("{full}."))) {
            return n + 1;
        }
    }
    best
}

/// 1-based line of byte offset `at`.
pub fn line_of(source: &str, at: usize) -> usize {
    source[..at.min(source.len())].matches('\n').count() + 1
}

fn key_in_message(message: &str) -> Option<String> {
    let rest = message.split("field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

fn key_at_line(source: &str, line: usize) -> String {
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    text.split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string()
}
