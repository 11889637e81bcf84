//! Bad specs are refused before any work starts, with the key and its line named.

use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::SweepError;

const GOOD: &str = r#"name = "t"

[data]
kind = "synthetic"
classes = 4

[[settings]]
name = "natural"
kind = "natural"

[search]
canvases = [{ kind = "white" }]
alphas = [0.2]
sizes = [0.01, 0.05]
"#;

/// The error of `check_classes(4)` on a spec that parses.
fn class_error(src: &str) -> String {
    let s = LoadedSpec::parse(src, "spec.toml").unwrap();
    s.check_classes(4).unwrap_err().to_string()
}

fn refuse(src: &str) -> (usize, String, String) {
    match LoadedSpec::parse(src, "spec.toml") {
        Err(SweepError::Spec {
            line, key, message, ..
        }) => (line, key, message),
        Err(e) => panic!("not a spec error: {e}"),
        Ok(_) => panic!("accepted:\n{src}"),
    }
}

#[test]
fn the_good_spec_parses_with_defaults() {
    let s = LoadedSpec::parse(GOOD, "spec.toml").unwrap();
    assert_eq!(*s.spec.search.epochs.get_ref(), 5);
    assert_eq!(*s.spec.search.batch.get_ref(), 4);
    assert_eq!(*s.spec.search.lr.get_ref(), 0.02);
    assert_eq!(*s.spec.search.subset_fraction.get_ref(), 0.2);
    assert_eq!(s.classes(4), vec![0, 1, 2, 3]);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let (line, key, msg) = refuse(&GOOD.replace("alphas = [0.2]", "alphas = [0.2]\nalpah = 3"));
    assert_eq!((line, key.as_str()), (14, "alpah"), "{msg}");
    let (line, key, _) =
        refuse(&GOOD.replace("kind = \"natural\"\n", "kind = \"natural\"\nepochs = 3\n"));
    assert_eq!((line, key.as_str()), (10, "epochs"));
}

#[test]
fn wrong_type_is_named_with_its_line() {
    let (line, key, msg) = refuse(&GOOD.replace("alphas = [0.2]", "alphas = \"0.2\""));
    assert_eq!(line, 13, "{msg}");
    assert_eq!(key, "alphas");
    let (line, key, msg) = refuse(&GOOD.replace("kind = \"natural\"", "kind = \"natral\""));
    assert_eq!((line, key.as_str()), (9, "kind"), "{msg}");
    assert!(msg.contains("natral"), "{msg}");
}

#[test]
fn impossible_sizes_are_refused() {
    for bad in ["[0.0, 0.05]", "[0.01, 1.5]", "[]", "[-0.1]"] {
        let (line, key, msg) =
            refuse(&GOOD.replace("sizes = [0.01, 0.05]", &format!("sizes = {bad}")));
        assert_eq!((line, key.as_str()), (14, "search.sizes"), "{bad}: {msg}");
    }
}

#[test]
fn a_class_that_does_not_exist_is_refused() {
    let s = LoadedSpec::parse(
        &GOOD.replace("[search]\n", "[search]\nclasses = [0, 7]\n"),
        "spec.toml",
    )
    .unwrap();
    match s.check_classes(4) {
        Err(SweepError::Spec {
            line, key, message, ..
        }) => {
            assert_eq!((line, key.as_str()), (12, "search.classes"));
            assert!(message.contains("class 7"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = class_error(&GOOD.replace("kind = \"natural\"", "kind = \"badnets\"\ntarget = 9"));
    assert!(
        e.contains("settings[0].target") && e.contains(":10:"),
        "{e}"
    );
}

#[test]
fn a_missing_data_path_is_refused() {
    let src = GOOD.replace(
        "kind = \"synthetic\"\nclasses = 4",
        "kind = \"fashion-mnist\"\npath = \"/nonexistent/fmnist\"",
    );
    let (line, key, msg) = refuse(&src);
    assert_eq!((line, key.as_str()), (5, "data.path"));
    assert!(msg.contains("/nonexistent/fmnist"), "{msg}");
    let (_, key, _) = refuse(&GOOD.replace("kind = \"synthetic\"\nclasses = 4", "kind = \"idx\""));
    assert_eq!(key, "data.path");
}

#[test]
fn other_impossible_values_are_refused() {
    let (_, key, _) = refuse(&GOOD.replace("alphas = [0.2]", "alphas = [1.5]"));
    assert_eq!(key, "search.alphas");
    let (_, key, _) = refuse(&GOOD.replace("[search]\n", "[search]\nsubset_fraction = 1.0\n"));
    assert_eq!(key, "search.subset_fraction");
    let (_, key, _) = refuse(&GOOD.replace("[search]\n", "[search]\nclasses = \"some\"\n"));
    assert_eq!(key, "search.classes");
    let (_, key, _) = refuse(&GOOD.replace("name = \"t\"", "name = \"a/b\""));
    assert_eq!(key, "name");
}

#[test]
fn settings_kinds_triggers_and_architectures_parse() {
    let src = GOOD.replace(
        "kind = \"natural\"",
        "kind = \"adversarial\"\narch = \"resnet50\"",
    );
    let s = LoadedSpec::parse(&src, "spec.toml").unwrap();
    let cfg = s.spec.settings.get_ref()[0].train_config(0);
    assert_eq!(cfg.adversarial.unwrap().steps, 7);
    let src = GOOD.replace(
        "kind = \"natural\"",
        "kind = \"badnets\"\ntrigger = \"white-square\"",
    );
    assert!(LoadedSpec::parse(&src, "spec.toml").is_ok());
    let (line, key, msg) = refuse(&GOOD.replace(
        "kind = \"natural\"",
        "kind = \"badnets\"\ntrigger = \"star\"",
    ));
    assert_eq!((line, key.as_str()), (10, "trigger"), "{msg}");
}

#[test]
fn every_class_badnets_expands_into_settings_with_the_ids_of_hand_written_ones() {
    use iscp_sweep::units::plan;
    let every = GOOD.replace(
        "[search]",
        "[[settings]]\nname = \"bd\"\nkind = \"badnets\"\ntargets = \"all\"\n\n[search]",
    );
    let by_hand = GOOD.replace(
        "[search]",
        "[[settings]]\nname = \"bd-target2\"\nkind = \"badnets\"\ntarget = 2\n\n[search]",
    );
    let every = LoadedSpec::parse(&every, "spec.toml").unwrap();
    let names: Vec<String> = every.settings(4).into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "natural",
            "bd-target0",
            "bd-target1",
            "bd-target2",
            "bd-target3"
        ]
    );
    let plans = plan(&every, 4, 100);
    let hand = plan(&LoadedSpec::parse(&by_hand, "spec.toml").unwrap(), 4, 100);
    let ids = |p: &iscp_sweep::units::SettingPlan| {
        p.all_units().map(|u| u.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&plans[3]),
        ids(&hand[1]),
        "bd-target2 keeps the ids of a hand-written setting"
    );
    assert_ne!(ids(&plans[2]), ids(&plans[3]));
    // Refused: with `target`, on a natural setting, or naming a class that does not exist.
    let both = GOOD.replace(
        "[search]",
        "[[settings]]\nname = \"bd\"\nkind = \"badnets\"\ntarget = 1\ntargets = \"all\"\n\n[search]",
    );
    let (_, key, msg) = refuse(&both);
    assert_eq!(key, "settings[1].targets");
    assert!(msg.contains("instead of `target`"), "{msg}");
    let natural = GOOD.replace("kind = \"natural\"", "kind = \"natural\"\ntargets = [1]");
    assert_eq!(refuse(&natural).1, "settings[0].targets");
    let missing = GOOD.replace(
        "[search]",
        "[[settings]]\nname = \"bd\"\nkind = \"badnets\"\ntargets = [1, 7]\n\n[search]",
    );
    let e = class_error(&missing);
    assert!(
        e.contains("settings[1].targets") && e.contains("class 7 does not exist"),
        "{e}"
    );
}

#[test]
fn bad_derive_keys_are_refused_with_the_key() {
    let derived = |derive: &str| {
        GOOD.replace(
            "[search]",
            &format!(
                "[[settings]]\nname = \"d-r\"\nkind = \"natural\"\nderive = {derive}\n\n[search]"
            ),
        )
    };
    for (derive, says) in [
        ("{ from = \"d-r\" }", "itself"),
        ("{ from = \"robust\" }", "not a setting"),
        ("{ from = \"natural\", step_size = 0.0 }", "step_size"),
        ("{ from = \"natural\", shard = 0 }", "at least 1"),
    ] {
        let (line, key, msg) = refuse(&derived(derive));
        assert_eq!(
            (line, key.as_str()),
            (14, "settings[1].derive"),
            "{derive}: {msg}"
        );
        assert!(msg.contains(says), "{derive}: {msg}");
    }
    let script = derived("{ from = \"natural\" }").replacen(
        "kind = \"natural\"\n",
        "kind = \"natural\"\nmodel = \"Cargo.toml\"\n",
        1,
    );
    let (_, key, msg) = refuse(&script);
    assert_eq!(key, "settings[1].derive");
    assert!(msg.contains("gradcam_methods"), "{msg}");
    let (_, key, msg) = refuse(&derived("{ from = \"natural\", stepz = 5 }"));
    assert!(msg.contains("stepz"), "{key}: {msg}");
    // A good one plans shards of 1,000 over the training count, the last one short.
    let spec = LoadedSpec::parse(&derived("{ from = \"natural\" }"), "spec.toml").unwrap();
    let plans = iscp_sweep::units::plan(&spec, 4, 2500);
    let shards: Vec<usize> = plans[1]
        .derives
        .iter()
        .map(|u| match &u.params {
            iscp_sweep::units::UnitParams::Derive(d) => d.count,
            _ => 0,
        })
        .collect();
    assert_eq!(shards, [1000, 1000, 500]);
    assert_eq!(plans[1].prepare.deps.len(), 3);
    assert!(plans[1]
        .derives
        .iter()
        .all(|u| u.deps == [plans[0].prepare.id.clone()]));
}

#[test]
fn names_that_are_not_plain_folders_are_refused() {
    for bad in ["..", ".", ".hidden", "a/b", "-x"] {
        let (line, key, message) =
            refuse(&GOOD.replace("name = \"t\"", &format!("name = \"{bad}\"")));
        assert_eq!((line, key.as_str()), (1, "name"), "{bad}: {message}");
        assert!(
            message.contains("starting with a letter or digit"),
            "{message}"
        );
        let (_, key, _) = refuse(&GOOD.replace("name = \"natural\"", &format!("name = \"{bad}\"")));
        assert_eq!(key, "settings[0].name", "{bad}");
    }
}

#[test]
fn a_population_expands_into_settings_and_its_bad_values_are_refused() {
    let pop = |body: &str| GOOD.replace("[search]", &format!("[population]\n{body}\n\n[search]"));
    let s = LoadedSpec::parse(&pop("clean = 2\nbadnets = 3"), "spec.toml").unwrap();
    let names: Vec<String> = s.settings(4).into_iter().map(|st| st.name).collect();
    assert_eq!(
        names,
        [
            "natural",
            "clean-000",
            "clean-001",
            "badnets-000",
            "badnets-001",
            "badnets-002"
        ]
    );
    let plans = iscp_sweep::units::plan(&s, 4, 100);
    let kinds = |k: iscp_sweep::units::UnitKind| {
        plans
            .iter()
            .flat_map(|p| p.all_units())
            .filter(|u| u.kind == k)
            .count()
    };
    use iscp_sweep::units::UnitKind;
    assert_eq!((kinds(UnitKind::Scan), kinds(UnitKind::Cleanse)), (6, 6));
    assert_eq!(kinds(UnitKind::Audit), 1, "one audit per sweep");
    for (body, key) in [
        ("clean = 0", "population.clean"),
        (
            "clean = 1\npoison_rates = [0.2, 0.1]",
            "population.poison_rates",
        ),
        (
            "clean = 1\ntrigger_sizes = [0, 3]",
            "population.trigger_sizes",
        ),
        (
            "clean = 1\ncalibration_share = 1.0",
            "population.calibration_share",
        ),
        ("clean = 1\ntriggers = []", "population.triggers"),
        ("clean = 1\ncleanse = { epochs = 0 }", "population.cleanse"),
        ("clean = 1\ngiven = \"/no/such/folder\"", "population.given"),
    ] {
        let (_, k, msg) = refuse(&pop(body));
        assert_eq!(k, key, "{body}: {msg}");
    }
    let (_, k, msg) = refuse(&pop("clean = 1").replace("sizes = [0.01, 0.05]", "sizes = [0.05]"));
    assert_eq!(k, "search.sizes", "{msg}");
    let (_, _, msg) =
        refuse(&pop("clean = 1").replace("name = \"natural\"", "name = \"clean-000\""));
    assert!(msg.contains("clean-000"), "{msg}");
}
