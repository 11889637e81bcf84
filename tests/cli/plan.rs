//! `iscp plan` prints the grid and its cost without the data for known datasets.

use crate::helpers::{iscp, stdout_ok};

/// `iscp plan experiments/<name>` into an empty results folder; its stdout.
fn plan_ok(name: &str) -> String {
    let spec = format!("{}/experiments/{name}", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = iscp(&["plan", &spec, "--results", dir.path().to_str().unwrap()]);
    stdout_ok(&out)
}

#[test]
fn plan_prints_the_paper_grid_without_the_data() {
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/paper-cifar10.toml"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = plan_ok("paper-cifar10.toml");
    // 10 classes × (5 + 5 + 5 + 1 canvases) × 3 alphas = 480 searches per setting.
    let every: Vec<String> = (0..10)
        .map(|k| format!("badnets-every-target{k}"))
        .collect();
    let mut settings = vec!["natural", "badnets", "d-r", "d-nr", "adversarial"];
    settings.extend(every.iter().map(String::as_str));
    for setting in settings {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(setting))
            .unwrap_or_else(|| panic!("{setting}: {text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        // D_R and D_NR: 50,000 training images rebuilt in derive-data units of 1,000.
        let derive = if setting.starts_with("d-") { "50" } else { "0" };
        // Finishing: its pictures and its scan.
        assert_eq!(cols[1..7], [derive, "1", "480", "30", "40", "2"], "{line}");
    }
    // 15 models (natural, BadNets, BadNets towards each of 10 classes, D_R, D_NR, adversarial)
    // × 553 units, and 100 derive-data units.
    assert!(text.contains("8395 units, 0 already done"), "{text}");
    for kind in [
        "derive-data",
        "prepare-model",
        "search",
        "evaluate",
        "baseline",
        "pictures",
        "scan",
        "transfer",
    ] {
        assert!(text.lines().any(|l| l.starts_with(kind)), "{kind}: {text}");
    }
    // Running it is refused: the data is not there.
    let out = iscp(&[
        "run",
        spec,
        "--results",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("`data.path`"),
        "{err}"
    );
}

#[test]
fn plan_prints_the_imagenet_grid_without_the_model_or_the_data() {
    let text = plan_ok("paper-imagenet.toml");
    // 50 classes × 16 canvases × 3 alphas searches, 150 evaluations, 50 × (3 UAPs + Grad-CAM).
    let line = text.lines().find(|l| l.starts_with("resnet50")).unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1..7], ["0", "1", "2400", "150", "200", "2"], "{line}");
    assert!(text.contains("2500 test images of [3, 224, 224]"), "{text}");
}

#[test]
fn plan_times_the_models_it_can_and_marks_guesses() {
    // The smoke spec's models are small CNNs on this CPU: timed, nothing guessed.
    let text = plan_ok("smoke.toml");
    let total = text.lines().find(|l| l.starts_with("total:")).unwrap();
    assert!(total.contains("each model timed"), "{text}");
    assert!(!text.contains('*'), "nothing guessed: {text}");
    let time = |text: &str, kind: &str| {
        let line = text.lines().find(|l| l.starts_with(kind)).unwrap();
        line.split_whitespace()
            .skip(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_ne!(time(&text, "search"), "0s", "{text}");
    // --guess times nothing and says its times are guesses.
    let spec = format!("{}/experiments/smoke.toml", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let out = iscp(&[
        "plan",
        &spec,
        "--results",
        dir.path().to_str().unwrap(),
        "--guess",
    ]);
    let guessed = stdout_ok(&out);
    assert!(time(&guessed, "search").ends_with('*'), "{guessed}");
    assert!(
        guessed.contains("guessed from assumed multiply-adds"),
        "{guessed}"
    );
    // A device this machine lacks (the paper's specs ask for cuda:0): guesses, said why.
    let text = plan_ok("paper-cifar10.toml");
    assert!(
        text.contains("nothing timed") || text.contains("each model timed"),
        "{text}"
    );
}

#[test]
fn plan_does_not_time_a_model_whose_images_are_too_large() {
    // 3×1,024×1,024 images: one of them through the small CNN is about 500 MB of activations.
    let spec =
        "name = \"big\"\nseed = 1\n\n[data]\nkind = \"synthetic\"\nclasses = 3\nsize = 1024\n\
                channels = 3\ntrain = 400\ntest = 40\n\n[[settings]]\nname = \"natural\"\n\
                kind = \"natural\"\n\n[search]\ncanvases = [{ kind = \"white\" }]\nalphas = [0.2]\n\
                sizes = [0.02]\n";
    let (_dir, path, results) = crate::helpers::spec_in_temp("big.toml", spec);
    let out = iscp(&[
        "plan",
        path.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    let text = stdout_ok(&out);
    assert!(
        text.contains("natural: not timed") && text.contains("MB"),
        "{text}"
    );
    let total = text.lines().find(|l| l.starts_with("total:")).unwrap();
    assert!(total.contains("guessed"), "{text}");
}

#[test]
fn every_bundled_experiment_plans() {
    // A spec the README names must not rot: each one expands (data absent or not), and a
    // population's count of units follows from its models.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let results = tempfile::tempdir().unwrap();
        let out = iscp(&[
            "plan",
            &format!("{dir}/{name}"),
            "--results",
            results.path().to_str().unwrap(),
            "--guess",
        ]);
        let text = stdout_ok(&out);
        assert!(text.contains(" units, 0 already done"), "{name}: {text}");
    }
    // 80 models × (20 searches, 10 evaluations, prepare, pictures, scan, Neural Cleanse, MM-BD,
    // UAP) + the audit.
    let text = stdout_ok(&iscp(&[
        "plan",
        &format!("{dir}/audit-population.toml"),
        "--results",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
        "--guess",
    ]));
    assert!(text.contains("2881 units, 0 already done"), "{text}");
}
