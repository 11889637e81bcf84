//! D_R / D_NR built by the sweep: derive-data units rebuild the training set shard by shard on
//! another setting's model, each image exactly once, and a model trains on the assembled shards.

use crate::helpers::{iscp, parts, rows, run_ok, tiny_spec, white_canvases_only};
use iscp_sweep::tables::read_derived_rows;

fn derived_spec(derive: &str) -> String {
    let base = white_canvases_only(&tiny_spec("", "[0.2]"));
    base.replace(
        "[search]",
        &format!(
            "[[settings]]\nname = \"d-nr\"\nkind = \"natural\"\ntrain = {{ epochs = 1, batch = 32, lr = 0.05 }}\nderive = {derive}\n\n[search]"
        ),
    )
}

#[test]
fn a_derived_training_set_is_built_in_shards_exactly_once_and_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("tiny.toml");
    std::fs::write(
        &spec,
        derived_spec(
            "{ from = \"natural\", steps = 60, step_size = 0.1, shard = 50, images = 120, batch = 32 }",
        ),
    )
    .unwrap();
    let results = dir.path().join("results");
    let log = run_ok(&spec, &results);
    assert!(log.contains("0 failed"), "{log}");
    assert!(
        log.contains("d-nr: training on 120 derived images from 3 shards"),
        "{log}"
    );
    let root = results.join("tiny");
    let derived = root.join("derived");
    assert_eq!(parts(&derived).len(), 3, "shards of 50, 50 and 20");
    let mut all: Vec<_> = parts(&derived)
        .iter()
        .flat_map(|p| read_derived_rows(p).unwrap())
        .collect();
    all.sort_by_key(|r| r.index);
    let indices: Vec<i64> = all.iter().map(|r| r.index).collect();
    assert_eq!(
        indices,
        (0..120).collect::<Vec<_>>(),
        "each image exactly once"
    );
    let (start, end): (f64, f64) = all
        .iter()
        .map(|r| (r.distance_start, r.distance_end))
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(
        end < 0.5 * start,
        "mean distance only fell from {start} to {end}"
    );
    for r in &all {
        assert_ne!(r.start_index, r.index, "starts from another image");
        assert_eq!(r.image.len(), 16 * 16);
        assert!(r.image.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(
            (r.setting.as_str(), r.source_setting.as_str()),
            ("d-nr", "natural")
        );
    }
    // Both models, and per-epoch training rows for each.
    assert_eq!(rows(&root.join("models")), 2);
    assert_eq!(rows(&root.join("training")), 2);
    assert_eq!(rows(&root.join("searches")), 6);
    // A second run has nothing left to do.
    let again = run_ok(&spec, &results);
    assert!(!again.contains("derived images"), "{again}");
    assert_eq!(rows(&derived), 120);
}

#[test]
fn a_derive_key_naming_no_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    std::fs::write(&spec, derived_spec("{ from = \"robust\" }")).unwrap();
    let out = iscp(&["plan", spec.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("`settings[1].derive`") && err.contains("`robust` is not a setting"),
        "{err}"
    );
}

#[test]
fn two_worker_processes_share_the_shards_and_the_trainer_fetches_them_from_the_coordinator() {
    use crate::cluster::{assert_exactly_once, Cluster};
    let mut c = Cluster::new();
    let _coord = c.coordinator(&[]);
    let (a, b) = (c.worker("a", &[]), c.worker("b", &[]));
    // 8 shards of 30 images, each a few hundred steps, so both workers take some.
    let spec = derived_spec(
        "{ from = \"natural\", steps = 400, step_size = 0.05, shard = 30, images = 240, batch = 30 }",
    )
    .replace("name = \"tiny\"", "name = \"shared\"");
    c.submit("shared", &spec);
    let s = c.wait_for("the derived sweep to finish", 240, |s| {
        s.contains("(finished)")
    });
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    let root = c.results("shared");
    assert_exactly_once(&root, "derived", 8);
    assert_eq!(rows(&root.join("derived")), 240);
    assert_exactly_once(&root, "models", 2);
    let (la, lb) = (a.log(), b.log());
    let shards = |log: &str| log.matches("rebuilt on natural").count();
    assert_eq!(shards(&la) + shards(&lb), 8, "{la}\n{lb}");
    assert!(
        shards(&la) > 0 && shards(&lb) > 0,
        "one worker ran every shard:\n{la}\n{lb}"
    );
    // Whoever trained d-nr fetched the 8 shard parts into its own cache.
    let trainer = if la.contains("training on 240 derived images") {
        "a"
    } else {
        "b"
    };
    assert!(
        format!("{la}{lb}").contains("d-nr: training on 240 derived images from 8 shards"),
        "{la}\n{lb}"
    );
    let cached = std::fs::read_dir(c.path(&format!("cache-{trainer}")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".iscpm"))
        .count();
    assert!(
        cached > 8,
        "shards and the natural model in the cache: {cached}"
    );
}
