//! Variants from a spec: total variation and learned canvas multiply the grid, keep base ids, and
//! store the learned canvas with its search.

use crate::helpers::{parts, rows, run_ok, spec_in_temp, tiny_spec};
use iscp_sweep::tables::{read_pattern_rows, read_search_rows};

#[test]
fn variants_extend_the_grid_and_keep_base_results() {
    let (_dir, spec, results) = spec_in_temp("tiny.toml", &tiny_spec("", "[0.2]"));
    run_ok(&spec, &results);
    let root = results.join("tiny");
    assert_eq!(rows(&root.join("searches")), 9);
    std::fs::write(
        &spec,
        tiny_spec(
            "tv_betas = [0.0, 1.0]\nlearned_canvas = [false, true]",
            "[0.2]",
        ),
    )
    .unwrap();
    let log = run_ok(&spec, &results);
    // The 13 base units are found; 3 variants × (9 searches + 3 evaluations) are new.
    // (and the setting's pictures again, since they read the new evaluations too).
    assert!(log.contains("13 already done, 37 ran, 0 failed"), "{log}");
    let mut variants = std::collections::BTreeMap::new();
    for p in parts(&root.join("searches")) {
        let s = read_search_rows(&p).unwrap().remove(0);
        assert_eq!(
            s.learned_canvas.is_some(),
            s.variant.contains("learned-canvas"),
            "{}",
            s.variant
        );
        if let Some(c) = &s.learned_canvas {
            assert_eq!(c.len(), 256);
            assert!(c.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        assert_eq!(s.tv_beta > 0.0, s.variant.starts_with("tv"));
        *variants.entry(s.variant).or_insert(0) += 1;
    }
    let expected: std::collections::BTreeMap<String, i32> = [
        ("base", 9),
        ("tv", 9),
        ("learned-canvas", 9),
        ("tv+learned-canvas", 9),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(variants, expected);
    for p in parts(&root.join("patterns")) {
        let r = read_pattern_rows(&p).unwrap();
        assert!(r.iter().all(|x| x.variant == r[0].variant));
        assert_eq!(
            r.iter().filter(|x| x.is_best).count(),
            2,
            "one best per size"
        );
    }
    assert!(root
        .join("images/natural-alpha0p2-released-tv-learned-canvas-best.png")
        .exists());
}
