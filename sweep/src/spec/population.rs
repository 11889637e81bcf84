//! `[population]` as settings: generated clean and BadNets models, each drawn from its own seed,
//! and the given TorchScript files with the ground truth of their manifest.

use super::{PopulationSpec, SettingKind, SettingSpec, TrainSpec};
use iscp_engine::attack::Family;
use iscp_engine::model::Arch;
use iscp_engine::rng::{mix, Rng};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A setting with nothing but a name, a kind and an architecture.
fn bare(name: String, kind: SettingKind, arch: Arch) -> SettingSpec {
    SettingSpec {
        name,
        kind,
        arch,
        model: None,
        normalize: None,
        gradcam_methods: None,
        train: TrainSpec::default(),
        target: None,
        targets: None,
        train_tensors: None,
        derive: None,
        trigger: None,
        trigger_family: None,
        trigger_size: None,
        trigger_position: None,
        trigger_seed: None,
        trigger_box: None,
        poison_rate: None,
        seed: None,
    }
}

fn pick<T: Copy>(rng: &mut Rng, from: &[T]) -> T {
    from[rng.below(from.len())]
}

/// The generated models: `clean-000…` then `badnets-000…`. Model i of a kind draws everything
/// from `mix(spec seed, kind, i)`, so adding models keeps the earlier ones (and their unit ids).
pub fn generated(p: &PopulationSpec, spec_seed: u64, num_classes: usize) -> Vec<SettingSpec> {
    let mut out = Vec::new();
    for (kind, count, tag) in [
        (SettingKind::Natural, p.clean, 0xC1EA),
        (SettingKind::Badnets, p.badnets, 0xBAD),
    ] {
        for i in 0..count {
            let seed = mix(&[spec_seed, tag, i as u64]);
            let mut rng = Rng::new(seed);
            let arch = pick(&mut rng, &p.archs);
            let augment = pick(&mut rng, &p.augment);
            let name = match kind {
                SettingKind::Badnets => format!("badnets-{i:03}"),
                _ => format!("clean-{i:03}"),
            };
            let mut st = bare(name, kind, arch);
            let train = match p.train_by_arch.get(&arch) {
                Some(over) => p.train.overlaid(over),
                None => p.train.clone(),
            };
            st.train = TrainSpec {
                augment: Some(augment),
                ..train
            };
            st.seed = Some(seed);
            if kind == SettingKind::Badnets {
                let [lo, hi] = p.trigger_sizes;
                let [rlo, rhi] = p.poison_rates;
                st.target = Some(Spanned::new(0..0, rng.below(num_classes.max(1)) as i64));
                st.trigger = Some(pick(&mut rng, &p.triggers));
                st.trigger_size = Some(lo + rng.below((hi - lo + 1).max(1) as usize) as i64);
                st.trigger_position = Some(pick(&mut rng, &p.positions));
                st.trigger_seed = Some(seed);
                let rate = rlo + (rhi - rlo) * rng.unit_f64();
                st.poison_rate = Some(Spanned::new(0..0, (rate * 1e4).round() / 1e4));
                // Drawn apart from the rest, so that a population of patches keeps its ids.
                let family = pick(&mut Rng::new(mix(&[seed, 0xFA4])), &p.families);
                st.trigger_family = (family != Family::Patch).then_some(family);
            }
            out.push(st);
        }
    }
    out
}

/// Reads a text file the spec names, refusing one larger than `max` bytes (or endless, like
/// `/dev/zero`) before holding more than that in memory.
pub fn read_capped(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{} is larger than the limit of {max} bytes",
            path.display()
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// One line of a manifest.
#[derive(Debug, Clone, PartialEq)]
struct Truth {
    poisoned: bool,
    target: Option<i64>,
    trigger_box: Option<[i64; 3]>,
    family: Option<Family>,
}

fn read_manifest(path: &Path) -> Result<HashMap<String, Truth>, String> {
    let text = read_capped(path, super::limits::MAX_MANIFEST_BYTES)?;
    // A manifest saved by a spreadsheet may open with a byte-order mark and end lines with CRLF.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let want = "file,poisoned,target,trigger_row,trigger_col,trigger_size";
    let fields = match lines.next().map(|(_, h)| h.replace(' ', "")) {
        Some(h) if h == want => 6,
        Some(h) if h == format!("{want},family") => 7,
        _ => {
            return Err(format!(
                "{}: the first line must be `{want}` (or the same with `,family` at the end)",
                path.display()
            ))
        }
    };
    let mut out = HashMap::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |why: &str| format!("{} line {}: {why}", path.display(), n + 1);
        if f.len() != fields {
            return Err(bad(&format!("give {fields} comma-separated fields")));
        }
        let num = |s: &str| -> Result<Option<i64>, String> {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>()
                .map(Some)
                .map_err(|_| bad(&format!("`{s}` is not a whole number")))
        };
        let poisoned = match f[1].to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => return Err(bad(&format!("poisoned is `{other}`: give true or false"))),
        };
        let target = num(f[2])?;
        if poisoned && target.is_none() {
            return Err(bad("a poisoned model needs its target class"));
        }
        let trigger_box = match (num(f[3])?, num(f[4])?, num(f[5])?) {
            (Some(r), Some(c), Some(s)) => Some([r, c, s]),
            (None, None, None) => None,
            _ => {
                return Err(bad(
                    "give all three of trigger_row, trigger_col, trigger_size, or none",
                ))
            }
        };
        let family = match f.get(6).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(
                Family::ALL
                    .into_iter()
                    .find(|x| x.name() == *v)
                    .ok_or_else(|| {
                        bad(&format!(
                    "family is `{v}`: give one of patch, sparse, blend, sig, warp or nothing"
                ))
                    })?,
            ),
        };
        let truth = Truth {
            poisoned,
            target: target.filter(|_| poisoned),
            trigger_box,
            family: family.filter(|_| poisoned),
        };
        if out.insert(f[0].to_string(), truth).is_some() {
            return Err(bad(&format!("{} has a line already", f[0])));
        }
    }
    Ok(out)
}

/// Every `*.pt` file of `folder`, sorted; an error past the limit on given files or with none.
fn given_files(folder: &Path) -> Result<Vec<PathBuf>, String> {
    let max = super::limits::MAX_GIVEN_FILES;
    let mut files: Vec<PathBuf> = Vec::new();
    for f in std::fs::read_dir(folder)
        .map_err(|e| format!("{}: {e}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|e| e == "pt"))
    {
        if files.len() == max {
            return Err(format!(
                "{} has more than the limit of {max} *.pt files",
                folder.display()
            ));
        }
        files.push(f);
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("{} has no *.pt files", folder.display()));
    }
    Ok(files)
}

/// Refuses a manifest that names a file (the first by name) which is not among `files`.
fn check_manifest_names(
    truth: &HashMap<String, Truth>,
    manifest: &Path,
    files: &[PathBuf],
    folder: &Path,
) -> Result<(), String> {
    let names: std::collections::HashSet<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    let mut absent: Vec<&String> = truth.keys().filter(|k| !names.contains(*k)).collect();
    absent.sort();
    if let Some(a) = absent.first() {
        return Err(format!(
            "{} names {a}, which is not a *.pt file of {}",
            manifest.display(),
            folder.display()
        ));
    }
    Ok(())
}

/// A file's stem with every character but ASCII letters, digits and `-_.` made `_`.
fn safe_stem(f: &Path) -> String {
    f.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The setting of one given file, with its manifest line when there is a manifest.
fn given_setting(
    p: &PopulationSpec,
    f: PathBuf,
    truth: Option<&HashMap<String, Truth>>,
) -> Result<SettingSpec, String> {
    let file = f
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let stem = safe_stem(&f);
    let t = match truth {
        Some(t) => Some(t.get(&file).cloned().ok_or_else(|| {
            format!("the manifest has no line for {file} (every given file needs one)")
        })?),
        None => None,
    };
    let poisoned = t.as_ref().is_some_and(|t| t.poisoned);
    let kind = if poisoned {
        SettingKind::Badnets
    } else {
        SettingKind::Natural
    };
    if std::fs::metadata(&f).is_ok_and(|m| m.len() == 0) {
        return Err(format!(
            "{} is empty (0 bytes): not a TorchScript model",
            f.display()
        ));
    }
    let mut st = bare(format!("given-{stem}"), kind, Arch::Torchscript);
    st.model = Some(Spanned::new(0..0, f.clone()));
    st.normalize = p.normalize.clone();
    if let Some(t) = t {
        st.target = t.target.map(|k| Spanned::new(0..0, k));
        st.trigger_box = t.trigger_box;
        st.trigger_family = t.family;
    }
    Ok(st)
}

/// The given models: every `*.pt` file of `folder`, sorted, a setting named after its stem
/// (`given-<stem>`), with the manifest's ground truth (a file the manifest does not name is an error).
pub fn given(p: &PopulationSpec, folder: &Path) -> Result<Vec<SettingSpec>, String> {
    let files = given_files(folder)?;
    let truth = match &p.manifest {
        Some(m) => Some(read_manifest(m.get_ref())?),
        None => None,
    };
    if let (Some(t), Some(m)) = (&truth, &p.manifest) {
        check_manifest_names(t, m.get_ref(), &files, folder)?;
    }
    let mut out = Vec::new();
    for f in files {
        out.push(given_setting(p, f, truth.as_ref())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> PopulationSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn generated_models_are_seeded_and_stable_when_more_are_added() {
        let p = spec("clean = 2\nbadnets = 3\ntrigger_sizes = [2, 5]\npoison_rates = [0.01, 0.1]");
        let a = generated(&p, 7, 10);
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].name, "clean-000");
        assert_eq!(a[4].name, "badnets-002");
        assert_eq!(a, generated(&p, 7, 10));
        let more = generated(&spec("clean = 2\nbadnets = 4"), 7, 10);
        assert_eq!(more[..5], a[..], "adding a model keeps the others");
        for b in &a[2..] {
            let t = b.trigger_spec();
            assert!((2..=5).contains(&t.size));
            let r = b.poison_rate();
            assert!((0.01..=0.1).contains(&r), "{r}");
            assert!((0..10).contains(&b.badnets_target()));
        }
        assert_ne!(a[2].seed, a[3].seed);
        // Families come from a draw of their own: every other draw stays, patches stay as they
        // were, and five models of five families see more than one family.
        let fam = generated(
            &spec("clean = 2\nbadnets = 3\nfamilies = [\"patch\", \"blend\", \"sig\", \"warp\", \"sparse\"]"),
            7,
            10,
        );
        for (x, y) in a.iter().zip(&fam) {
            assert_eq!(x.trigger_spec(), y.trigger_spec());
            assert_eq!((x.seed, x.badnets_target()), (y.seed, y.badnets_target()));
            if y.trigger_family.is_none() {
                assert_eq!(x, y);
            }
        }
        assert!(a.iter().all(|b| b.trigger_family.is_none()));
        let many = generated(
            &spec("badnets = 12\nfamilies = [\"blend\", \"warp\"]"),
            7,
            10,
        );
        let kinds: std::collections::HashSet<_> = many.iter().map(|b| b.family()).collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
    }

    #[test]
    fn an_architecture_can_train_apart_without_moving_the_other_draws() {
        let base = "clean = 6\nbadnets = 6\narchs = [\"small-cnn\", \"gap-cnn\"]\ntrain = { epochs = 3, lr = 0.05 }";
        let a = generated(&spec(base), 7, 10);
        let b = generated(
            &spec(&format!(
                "{base}\ntrain_by_arch = {{ gap-cnn = {{ epochs = 6 }} }}"
            )),
            7,
            10,
        );
        let archs: std::collections::HashSet<_> = b.iter().map(|s| s.arch).collect();
        assert_eq!(archs.len(), 2, "both architectures are drawn");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.arch, x.seed, &x.name), (y.arch, y.seed, &y.name));
            assert_eq!(y.train.lr, Some(0.05), "keys it does not name stay");
            match y.arch {
                Arch::GapCnn => assert_eq!(y.train.epochs, Some(6)),
                _ => assert_eq!(x, y, "another architecture's model is unchanged"),
            }
        }
    }

    #[test]
    fn manifest_gives_ground_truth_and_refuses_bad_lines() {
        let dir = std::env::temp_dir().join(format!("iscp-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["a.pt", "b.pt"] {
            std::fs::write(dir.join(f), b"not empty").unwrap();
        }
        let m = dir.join("m.csv");
        std::fs::write(
            &m,
            "file,poisoned,target,trigger_row,trigger_col,trigger_size\na.pt,true,3,1,2,4\nb.pt,false,,,,\n",
        )
        .unwrap();
        let text = format!("manifest = {:?}", m.display().to_string());
        let got = given(&spec(&text), &dir).unwrap();
        assert_eq!(got[0].name, "given-a");
        assert_eq!(got[0].kind, SettingKind::Badnets);
        assert_eq!(got[0].badnets_target(), 3);
        assert_eq!(got[0].trigger_box, Some([1, 2, 4]));
        assert_eq!(got[1].kind, SettingKind::Natural);
        std::fs::write(
            &m,
            "file,poisoned,target,trigger_row,trigger_col,trigger_size\na.pt,true,,,,\n",
        )
        .unwrap();
        let e = given(&spec(&text), &dir).unwrap_err();
        assert!(e.contains("line 2") && e.contains("target"), "{e}");
        std::fs::write(
            &m,
            "file,poisoned,target,trigger_row,trigger_col,trigger_size\na.pt,false,,,,\n",
        )
        .unwrap();
        assert!(given(&spec(&text), &dir).unwrap_err().contains("b.pt"));
        let head = "file,poisoned,target,trigger_row,trigger_col,trigger_size";
        std::fs::write(
            &m,
            format!("{head}\na.pt,false,,,,\nb.pt,false,,,,\na.pt,true,1,,,\n"),
        )
        .unwrap();
        assert!(given(&spec(&text), &dir).unwrap_err().contains("already"));
        std::fs::write(
            &m,
            format!("{head}\na.pt,false,,,,\nb.pt,false,,,,\nc.pt,false,,,,\n"),
        )
        .unwrap();
        assert!(given(&spec(&text), &dir).unwrap_err().contains("c.pt"));
        // An optional family column: the poisoned model's trigger family, scored apart.
        std::fs::write(
            &m,
            format!("{head},family\na.pt,true,3,,,,blend\nb.pt,false,,,,,\n"),
        )
        .unwrap();
        let got = given(&spec(&text), &dir).unwrap();
        assert_eq!(got[0].trigger_family, Some(Family::Blend));
        assert_eq!(got[1].trigger_family, None);
        std::fs::write(&m, format!("{head},family\na.pt,true,3,,,,noise\n")).unwrap();
        let e = given(&spec(&text), &dir).unwrap_err();
        assert!(e.contains("line 2") && e.contains("noise"), "{e}");
        std::fs::write(&m, format!("{head},family\na.pt,true,3,,,\n")).unwrap();
        assert!(given(&spec(&text), &dir).unwrap_err().contains("7 comma"));
        // A spreadsheet's byte-order mark and CRLF line ends are read as the plain text.
        std::fs::write(
            &m,
            format!("\u{feff}{head}\r\na.pt,true,3,1,2,4\r\nb.pt,false,,,,\r\n"),
        )
        .unwrap();
        assert_eq!(
            given(&spec(&text), &dir).unwrap()[0].trigger_box,
            Some([1, 2, 4])
        );
        // A manifest that never ends, or a model file of 0 bytes, is refused.
        let endless = "manifest = \"/dev/zero\"";
        assert!(given(&spec(endless), &dir)
            .unwrap_err()
            .contains("larger than the limit"));
        std::fs::write(dir.join("b.pt"), b"").unwrap();
        std::fs::write(&m, format!("{head}\na.pt,false,,,,\nb.pt,false,,,,\n")).unwrap();
        assert!(given(&spec(&text), &dir)
            .unwrap_err()
            .contains("empty (0 bytes)"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
