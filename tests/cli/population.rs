//! A population audit end to end on synthetic data: six generated models (three BadNets with
//! different targets and trigger kinds), the three detectors on each exactly once, the audit table
//! (with the combined verdict) and ROC pictures, and a second run that finds everything done.

use crate::helpers::{rows, run_ok, spec_in_temp};
use iscp_sweep::tables::{
    read_audit_rows, read_detection_rows, read_models, COMBINED, ISCP, MM_BD, NEURAL_CLEANSE, UAP,
};
use std::collections::{HashMap, HashSet};

/// Seed 7 draws three BadNets models with targets 4, 3, 2 and solid, random-colours and
/// white-square triggers (the test checks that it does).
const SPEC: &str = r#"
name = "pop"
seed = 7

[data]
kind = "synthetic"
classes = 5
size = 24
channels = 1
train = 2000
test = 1000

[population]
clean = 3
badnets = 3
trigger_sizes = [3, 4]
poison_rates = [0.08, 0.10]
train = { epochs = 3, batch = 64, lr = 0.05 }
calibration_share = 0.34
cleanse = { epochs = 40 }

[search]
canvases = [{ kind = "positive", n = 1 }, { kind = "white" }]
alphas = [0.2]
sizes = [0.01]
"#;

#[test]
fn both_detectors_audit_a_population_and_iscp_finds_every_target() {
    let (_dir, spec, results) = spec_in_temp("pop.toml", SPEC);
    let log = run_ok(&spec, &results);
    assert!(log.contains(" 0 failed"), "{log}");
    assert!(
        log.contains("audit (") && log.contains("neural-cleanse"),
        "{log}"
    );
    let root = results.join("pop");

    let models = read_models(&root.join("models")).unwrap();
    assert_eq!(models.len(), 6);
    let poisoned: Vec<_> = models
        .iter()
        .filter(|m| m.setting_kind == "badnets")
        .collect();
    assert_eq!(poisoned.len(), 3);
    let targets: HashSet<i64> = poisoned.iter().map(|m| m.poison_target.unwrap()).collect();
    let kinds: HashSet<String> = poisoned
        .iter()
        .map(|m| m.trigger.clone().unwrap())
        .collect();
    assert_eq!(
        (targets.len(), kinds.len()),
        (3, 3),
        "different targets and triggers"
    );
    for m in &poisoned {
        assert!(m.attack_success_rate.unwrap() >= 0.9, "{m:?}");
        assert_eq!(m.attack_failed, Some(false));
        assert!(m.trigger_size.is_some() && m.trigger_row.is_some());
    }
    let truth: HashMap<&str, Option<i64>> = models
        .iter()
        .map(|m| (m.setting.as_str(), m.poison_target))
        .collect();

    let det = read_detection_rows(&root.join("detection")).unwrap();
    assert_eq!(
        rows(&root.join("detection")),
        54,
        "four detectors, their per-class readings and the combined verdict × six models"
    );
    // Each per-class reading: every model once, its z per class, its target the largest z.
    for detector in [ISCP, NEURAL_CLEANSE, MM_BD, UAP] {
        let name = format!("{detector}-by-class");
        let mine: Vec<_> = det.iter().filter(|r| r.detector == name).collect();
        assert_eq!(mine.len(), 6, "{name}");
        for r in mine {
            let z = r.class_stats.as_ref().expect("z per class");
            assert_eq!(z.len(), 5, "{r:?}");
            let top = z[r.predicted_target as usize];
            assert!(z.iter().all(|&v| v.is_nan() || v <= top), "{r:?}");
            assert!(
                (r.score - top as f64).abs() <= 1e-5 * (1.0 + r.score.abs()),
                "{r:?}"
            );
        }
    }
    for detector in [ISCP, NEURAL_CLEANSE, MM_BD, UAP] {
        let mine: Vec<_> = det.iter().filter(|r| r.detector == detector).collect();
        let names: HashSet<&str> = mine.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(
            (mine.len(), names.len()),
            (6, 6),
            "{detector}: each model once"
        );
        for r in &mine {
            if let Some(target) = truth[r.model.as_str()] {
                eprintln!("{detector} on {}: {r:?} (target {target})", r.model);
                if detector == ISCP {
                    assert_eq!(r.predicted_target, target, "iscp on {}: {r:?}", r.model);
                }
                // MM-BD's inputs and the UAP have no mask to compare with the trigger's box.
                let masked = [ISCP, NEURAL_CLEANSE].contains(&detector);
                assert_eq!(r.trigger_iou.is_some(), masked, "{r:?}");
            }
            // Every class's raw statistic, indexed by class; the predicted target's is its most
            // extreme (the smallest norm for Neural Cleanse, the largest elsewhere).
            let stats = r.class_stats.as_ref().expect("per-class statistics");
            assert_eq!(stats.len(), 5, "{detector}: {r:?}");
            let t = stats[r.predicted_target as usize];
            let extreme = match detector {
                NEURAL_CLEANSE => stats.iter().all(|&v| v.is_nan() || v >= t),
                _ if detector == UAP || detector == MM_BD => {
                    stats.iter().all(|&v| v.is_nan() || v <= t)
                }
                _ => true,
            };
            assert!(
                extreme,
                "{detector}: target {} in {stats:?}",
                r.predicted_target
            );
        }
    }
    assert!(det
        .iter()
        .filter(|r| r.detector == COMBINED)
        .all(|r| r.class_stats.is_none()));
    for r in det.iter().filter(|r| r.detector == ISCP) {
        let poisoned = truth[r.model.as_str()].is_some();
        assert_eq!(r.flagged, poisoned, "iscp's rule on {}: {r:?}", r.model);
    }

    let audit = read_audit_rows(&root.join("audit")).unwrap();
    let order: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.detector.as_str(), a.group.as_str()))
        .collect();
    // One trigger family and one architecture: the whole population only; each detector followed
    // by its per-class reading.
    assert_eq!(
        order,
        [
            ISCP,
            "iscp-by-class",
            NEURAL_CLEANSE,
            "neural-cleanse-by-class",
            MM_BD,
            "mm-bd-by-class",
            UAP,
            "uap-by-class",
            COMBINED
        ]
        .map(|d| (d, "all"))
    );
    assert_eq!((audit[0].models, audit[0].poisoned), (6, 3));
    assert_eq!(audit[0].auroc, Some(1.0));
    assert_eq!(audit[0].target_top1, Some(1.0));
    // Neural Cleanse's margins are thinner (a trained model, a short budget): two of three.
    assert!(audit[2].target_top1.unwrap() >= 0.6, "{:?}", audit[2]);
    // The combined verdict scores every model (its p-values rest on two other clean models here:
    // its ranking is tested by hand in the audit's unit tests).
    assert_eq!((audit[8].models, audit[8].poisoned), (6, 3));
    assert!(audit[8].auroc.is_some(), "{:?}", audit[8]);
    for d in [ISCP, NEURAL_CLEANSE, MM_BD, UAP, COMBINED] {
        assert!(root.join(format!("images/roc-{d}.png")).is_file(), "{d}");
    }
    // No group, no picture of one (a family's and an architecture's are drawn with two or more).
    let group_pictures = std::fs::read_dir(root.join("images"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("roc-family-") || n.starts_with("roc-arch-"))
        .count();
    assert_eq!(group_pictures, 0);

    // The report reads as an audit: the quality table, every model in the suspicion table, and
    // patterns pictured for the suspects only.
    let page = std::fs::read_to_string(root.join("report.html")).unwrap();
    let suspects = page
        .split("id=\"audit-models\"")
        .nth(1)
        .expect("the models' table");
    let suspects = suspects.split("</table>").next().unwrap();
    assert!(page.contains("id=\"audit-quality\""), "no quality table");
    for m in truth.keys() {
        assert!(
            suspects.contains(&format!("<td>{m}</td>")),
            "{m} not in the audit table"
        );
    }
    for clean in ["clean-000", "clean-001", "clean-002"] {
        let flagged = suspects
            .split("<tr")
            .any(|r| r.contains("class=\"marked\"") && r.contains(&format!(">{clean}<")));
        if !flagged {
            assert!(
                !page.contains(&format!("images/{clean}-")),
                "{clean} pictured"
            );
        }
    }

    // Nothing runs twice: a second run finds every unit done and prints the audit again.
    let again = run_ok(&spec, &results);
    assert!(again.contains(" 0 ran, 0 failed"), "{again}");
    assert!(again.contains("audit ("), "{again}");
    assert_eq!(rows(&root.join("detection")), 54);
}
