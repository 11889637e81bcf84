//! Golden unit ids: the ids `experiments/smoke.toml` expands to are pinned, so a change to a spec
//! struct's serialised form (a renamed field, a new default written out) cannot silently re-run
//! every earlier result. Ids are what lets `iscp run` recognise results it already has.
//!
//! An intended change: run with `ISCP_BLESS=1` to rewrite the golden file, and say in CHANGELOG.md
//! why ids changed.

use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::units::plan;
use std::path::Path;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/smoke-unit-ids.txt"
);

fn smoke_ids() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/smoke.toml");
    let spec = LoadedSpec::load_for_plan(&path).unwrap();
    // smoke.toml: 5 synthetic classes, 2,000 training images.
    let mut lines: Vec<String> = plan(&spec, 5, 2000)
        .iter()
        .flat_map(|p| {
            p.all_units()
                .map(|u| format!("{} {} {}", p.setting.name, u.kind.name(), u.id))
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

#[test]
fn the_smoke_spec_expands_to_the_pinned_unit_ids() {
    let now = smoke_ids();
    if std::env::var_os("ISCP_BLESS").is_some() {
        std::fs::write(GOLDEN, &now).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(GOLDEN).expect("the golden file exists");
    // 202 units of rows; pictures and a scan for each of its two settings.
    assert_eq!(now.lines().count(), 206, "smoke.toml's 206 units");
    if now != pinned {
        let gone: Vec<&str> = pinned.lines().filter(|l| !now.contains(l)).collect();
        let new: Vec<&str> = now.lines().filter(|l| !pinned.contains(l)).collect();
        panic!(
            "unit ids of experiments/smoke.toml changed: every earlier result of the changed \
             units would run again.\n{} pinned ids are gone, e.g. {:?}\n{} new, e.g. {:?}\n\
             If intended, rerun with ISCP_BLESS=1 and say why in CHANGELOG.md.",
            gone.len(),
            &gone[..gone.len().min(3)],
            new.len(),
            &new[..new.len().min(3)]
        );
    }
}
