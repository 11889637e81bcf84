//! Population audits: the detectors' rows (`detection`) joined with the models' ground truth
//! (`models`) into each detector's detection quality (`audit`) and its ROC picture.

pub mod by_class;
mod combined;
pub mod metrics;
pub mod verdict;

use crate::tables::{AuditRow, DetectionRow, ModelRow, COMBINED, ISCP, MM_BD, NEURAL_CLEANSE, UAP};
use iscp_proto::Table;
use metrics::{
    auroc, auroc_interval, calibrate_held_out, held_out_fpr_bound, rates, roc_points,
    split_heldout, Scored,
};

/// The audit's method, bumped whenever what it computes from the same rows changes (3: groups and
/// the combined detector with leave-one-out p-values over every other clean model; 4: each
/// detector's per-class reading, fused in the combined detector instead of the raw scores; 5: far
/// outliers left out of a class's reference, readings flagged at z ≥ 6, the combined verdict
/// flagged when any reading is; 6: the calibrated threshold split conformal).
pub const METHOD: u32 = 6;

/// The FPR the audit's thresholds are held to.
pub const MAX_FPR: f64 = 0.05;
/// Bootstrap resamples of the AUROC interval.
pub const RESAMPLES: usize = 1000;

/// What a model really is, from its `models` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub model: String,
    pub poisoned: bool,
    /// A BadNets model whose attack did not take (attack success under 0.9): left out.
    pub attack_failed: bool,
    pub target: Option<i64>,
    /// A poisoned model's trigger family, when known.
    pub family: Option<String>,
    pub arch: String,
}

impl Truth {
    pub fn of(m: &ModelRow) -> Truth {
        let poisoned = m.setting_kind == "badnets";
        Truth {
            model: m.setting.clone(),
            poisoned,
            attack_failed: poisoned && m.attack_failed == Some(true),
            target: m.poison_target.filter(|_| poisoned),
            family: m.trigger_family.clone().filter(|_| poisoned),
            arch: m.architecture.clone(),
        }
    }
}

/// The whole population (`all`), then, where it has more than one of them, each trigger family
/// (its poisoned models and every clean model: `family=blend`) and each architecture (its
/// poisoned and clean models: `arch=gap-cnn`).
fn groups(truth: &[Truth]) -> Vec<(String, Vec<Truth>)> {
    let mut out = vec![(ALL.to_string(), truth.to_vec())];
    let mut families: Vec<&str> = truth.iter().filter_map(|t| t.family.as_deref()).collect();
    families.sort_unstable();
    families.dedup();
    if families.len() > 1 {
        for f in families {
            let members = truth
                .iter()
                .filter(|t| !t.poisoned || t.family.as_deref() == Some(f))
                .cloned()
                .collect();
            out.push((format!("family={f}"), members));
        }
    }
    let mut archs: Vec<&str> = truth.iter().map(|t| t.arch.as_str()).collect();
    archs.sort_unstable();
    archs.dedup();
    if archs.len() > 1 {
        for a in archs {
            let members = truth.iter().filter(|t| t.arch == a).cloned().collect();
            out.push((format!("arch={a}"), members));
        }
    }
    out
}

/// The `group` of the audit rows over the whole population.
pub const ALL: &str = "all";

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, s) = v.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| s / n as f64)
}

/// A counted model: what it really is and the detector's row for it.
type Pair<'a> = (&'a Truth, &'a DetectionRow);

/// The detector's row of each model that counts (its attack did not fail), in `truth` order,
/// and how many models that count have no row.
fn pair_rows<'a>(truth: &'a [Truth], rows: &[&'a DetectionRow]) -> (Vec<Pair<'a>>, usize) {
    let by_model: std::collections::HashMap<&'a str, &'a DetectionRow> =
        rows.iter().map(|&r| (r.model.as_str(), r)).collect();
    let scored_truth: Vec<Pair<'a>> = truth
        .iter()
        .filter(|t| !t.attack_failed)
        .filter_map(|t| by_model.get(t.model.as_str()).map(|r| (t, *r)))
        .collect();
    let missing = truth
        .iter()
        .filter(|t| !t.attack_failed && !by_model.contains_key(t.model.as_str()))
        .count();
    (scored_truth, missing)
}

/// The detector's own rule (the models it flagged) as (TPR, FPR).
fn rule_rates(
    scored_truth: &[Pair<'_>],
    poisoned: &[&Pair<'_>],
    clean: &[&Pair<'_>],
) -> (f64, f64) {
    let flagged: std::collections::HashSet<&str> = scored_truth
        .iter()
        .filter(|(_, r)| r.flagged)
        .map(|(t, _)| t.model.as_str())
        .collect();
    let tp = poisoned
        .iter()
        .filter(|(t, _)| flagged.contains(t.model.as_str()))
        .count();
    let fp = clean
        .iter()
        .filter(|(t, _)| flagged.contains(t.model.as_str()))
        .count();
    (
        tp as f64 / poisoned.len() as f64,
        fp as f64 / clean.len() as f64,
    )
}

/// A threshold set on held-out clean models and what it gives on the other models.
struct Calibration {
    /// The scores of the held-out clean models.
    held_scores: Vec<f64>,
    threshold: Option<f64>,
    /// (TPR, FPR) at the threshold over the poisoned and the other clean models.
    rates: Option<(f64, f64)>,
}

/// Held-out clean models (`share` of them, chosen by `seed`) set the threshold; the rest
/// measure it. No threshold unless `both` kinds of model were scored.
fn calibration(
    poisoned: &[&Pair<'_>],
    clean: &[&Pair<'_>],
    share: f64,
    seed: u64,
    both: bool,
) -> Calibration {
    let held = split_heldout(clean.len(), share, seed);
    let held_scores: Vec<f64> = clean
        .iter()
        .zip(&held)
        .filter(|(_, &h)| h)
        .map(|((_, r), _)| r.score)
        .collect();
    let threshold =
        calibrate_held_out(&held_scores, MAX_FPR).filter(|_| both && !held_scores.is_empty());
    let rest: Vec<Scored> = poisoned
        .iter()
        .map(|(_, r)| Scored {
            score: r.score,
            poisoned: true,
        })
        .chain(
            clean
                .iter()
                .zip(&held)
                .filter(|(_, &h)| !h)
                .map(|((_, r), _)| Scored {
                    score: r.score,
                    poisoned: false,
                }),
        )
        .collect();
    let calibrated = threshold.map(|t| rates(&rest, |s| s >= t));
    Calibration {
        held_scores,
        threshold,
        rates: calibrated,
    }
}

/// The audit of one detector over the models in `truth` (sorted by name), from its rows.
fn audit_one(
    detector: &str,
    truth: &[Truth],
    rows: &[&DetectionRow],
    share: f64,
    seed: u64,
) -> AuditRow {
    let (scored_truth, missing) = pair_rows(truth, rows);
    let scored: Vec<Scored> = scored_truth
        .iter()
        .map(|(t, r)| Scored {
            score: r.score,
            poisoned: t.poisoned,
        })
        .collect();
    let poisoned: Vec<&Pair<'_>> = scored_truth.iter().filter(|(t, _)| t.poisoned).collect();
    let clean: Vec<&Pair<'_>> = scored_truth.iter().filter(|(t, _)| !t.poisoned).collect();
    let interval = auroc_interval(&scored, RESAMPLES, seed);
    let at5 = metrics::tpr_at_fpr(&scored, MAX_FPR);
    let both = !poisoned.is_empty() && !clean.is_empty();
    let rule = both.then(|| rule_rates(&scored_truth, &poisoned, &clean));
    let cal = calibration(&poisoned, &clean, share, seed, both);
    let (threshold, calibrated) = (cal.threshold, cal.rates);
    AuditRow {
        detector: detector.to_string(),
        group: ALL.to_string(),
        models: scored.len() as i64,
        poisoned: poisoned.len() as i64,
        clean: clean.len() as i64,
        attack_failed: truth.iter().filter(|t| t.attack_failed).count() as i64,
        missing: missing as i64,
        auroc: auroc(&scored),
        auroc_low: interval.map(|i| i.low),
        auroc_high: interval.map(|i| i.high),
        tpr_at_5_fpr: at5.map(|a| a.0),
        threshold_at_5_fpr: at5.map(|a| a.1).filter(|t| t.is_finite()),
        rule_tpr: rule.map(|r| r.0),
        rule_fpr: rule.map(|r| r.1),
        calibration_models: cal.held_scores.len() as i64,
        calibrated_threshold: threshold.filter(|t| t.is_finite()),
        calibrated_tpr: calibrated.map(|c| c.0).filter(|v| !v.is_nan()),
        calibrated_fpr: calibrated.map(|c| c.1).filter(|v| !v.is_nan()),
        auroc_right_target: auroc(&right_target(&scored_truth)),
        target_top1: mean(
            poisoned
                .iter()
                .filter_map(|(t, r)| t.target.map(|k| (r.predicted_target == k) as u8 as f64)),
        ),
        mean_trigger_iou: mean(poisoned.iter().filter_map(|(_, r)| r.trigger_iou)),
        seconds_per_model: mean(scored_truth.iter().map(|(_, r)| r.seconds)).unwrap_or(0.0),
    }
}

/// The models' scores with every poisoned model whose predicted target is not its true one (where
/// that is known) scored as a miss, below every clean model.
fn right_target(scored_truth: &[Pair<'_>]) -> Vec<Scored> {
    scored_truth
        .iter()
        .map(|(t, r)| {
            let wrong = t.poisoned && t.target.is_some_and(|k| k != r.predicted_target);
            Scored {
                score: if wrong { f64::NEG_INFINITY } else { r.score },
                poisoned: t.poisoned,
            }
        })
        .collect()
}

/// The detectors in `rows`: ISCP, Neural Cleanse, MM-BD, UAP, any other by name, each followed
/// by its per-class reading; the combined last.
fn detectors(rows: &[DetectionRow]) -> Vec<String> {
    let mut names: Vec<String> = rows.iter().map(|r| r.detector.clone()).collect();
    names.sort_by_key(|n| {
        let base = n.strip_suffix(by_class::SUFFIX).unwrap_or(n);
        (
            n == COMBINED,
            base != ISCP,
            base != NEURAL_CLEANSE,
            base != MM_BD,
            base != UAP,
            base.to_string(),
            base != n,
        )
    });
    names.dedup();
    names
}

/// Whether the audit computes `detector`'s rows itself (the combined detector, the per-class
/// readings) rather than reading them from a detector's unit.
pub fn is_derived(detector: &str) -> bool {
    detector == COMBINED || detector.ends_with(by_class::SUFFIX)
}

/// The models' truth, one per model, sorted by name.
fn truth_of(models: &[ModelRow]) -> Vec<Truth> {
    let mut truth: Vec<Truth> = models.iter().map(Truth::of).collect();
    truth.sort_by(|a, b| a.model.cmp(&b.model));
    truth.dedup_by(|a, b| a.model == b.model);
    truth
}

/// Every detector's rows with each one's per-class reading (where its rows have class
/// statistics) and, when there are two detectors or more, the combined detector's, which fuses
/// the per-class readings (a detector without one: its own scores).
pub fn with_combined(models: &[ModelRow], rows: &[DetectionRow]) -> Vec<DetectionRow> {
    let truth = truth_of(models);
    let mut all: Vec<DetectionRow> = rows
        .iter()
        .filter(|r| !is_derived(&r.detector))
        .cloned()
        .collect();
    let readings = by_class::derive(&truth, &all);
    let read: std::collections::HashSet<&str> = readings
        .iter()
        .filter_map(|r| r.detector.strip_suffix(by_class::SUFFIX))
        .collect();
    let fused: Vec<DetectionRow> = all
        .iter()
        .filter(|r| !read.contains(r.detector.as_str()))
        .chain(&readings)
        .cloned()
        .collect();
    let combined = match detectors(&fused).len() > 1 {
        true => combined::fuse(&truth, &fused),
        false => Vec::new(),
    };
    all.extend(readings);
    all.extend(combined);
    all
}

/// One audit row per detector (the combined one included) and group (`all`, then each family and
/// architecture); `share` of the clean models (chosen by `seed`) calibrate.
pub fn audit(models: &[ModelRow], rows: &[DetectionRow], share: f64, seed: u64) -> Vec<AuditRow> {
    score_detectors(models, &with_combined(models, rows), share, seed)
}

/// `audit` on rows that already hold the combined detector's.
fn score_detectors(
    models: &[ModelRow],
    rows: &[DetectionRow],
    share: f64,
    seed: u64,
) -> Vec<AuditRow> {
    let groups = groups(&truth_of(models));
    let mut out = Vec::new();
    for d in detectors(rows) {
        let mine: Vec<&DetectionRow> = rows.iter().filter(|r| r.detector == d).collect();
        for (group, members) in &groups {
            out.push(AuditRow {
                group: group.clone(),
                ..audit_one(&d, members, &mine, share, seed)
            });
        }
    }
    out
}

/// Models by name.
type TruthMap<'a> = std::collections::HashMap<&'a str, &'a Truth>;

fn by_name(members: &[Truth]) -> TruthMap<'_> {
    members.iter().map(|t| (t.model.as_str(), t)).collect()
}

/// The ROC curve of `detector` (FPR, TPR), over the scored models.
pub fn roc(models: &[ModelRow], rows: &[DetectionRow], detector: &str) -> Vec<(f64, f64)> {
    let truth = truth_of(models);
    roc_over(&by_name(&truth), rows, detector)
}

/// The ROC curve of `detector` over the models of `truth` whose attack did not fail.
fn roc_over(truth: &TruthMap<'_>, rows: &[DetectionRow], detector: &str) -> Vec<(f64, f64)> {
    let scored: Vec<Scored> = rows
        .iter()
        .filter(|r| r.detector == detector)
        .filter_map(|r| {
            let t = truth.get(r.model.as_str())?;
            (!t.attack_failed).then_some(Scored {
                score: r.score,
                poisoned: t.poisoned,
            })
        })
        .collect();
    roc_points(&scored)
}

/// The picture file of a detector's ROC curve over the whole population.
pub fn roc_file(detector: &str) -> String {
    format!("images/roc-{detector}.png")
}

/// The picture file of a group's ROC curves: `images/roc-family-blend.png` for `family=blend`.
pub fn group_roc_file(group: &str) -> String {
    let name: String = group
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("images/roc-{name}.png")
}

/// One picture per group other than `all` (a trigger family's poisoned models against every
/// clean model, an architecture's models): every detector's ROC curve in it, the combined one
/// included, with its AUROC in the legend. A detector and its per-class reading share a colour,
/// the reading dashed.
pub fn group_roc_pictures(
    models: &[ModelRow],
    rows: &[DetectionRow],
    audit_rows: &[AuditRow],
) -> crate::Result<Vec<(String, Vec<u8>)>> {
    use iscp_figures::plots::{lines, Line};
    let detectors = detectors(rows);
    let mut bases: Vec<&str> = detectors
        .iter()
        .map(|d| d.strip_suffix(by_class::SUFFIX).unwrap_or(d))
        .collect();
    bases.dedup();
    let mut out = Vec::new();
    for (group, members) in groups(&truth_of(models)).into_iter().skip(1) {
        let members = by_name(&members);
        let mut curves: Vec<Line> = Vec::new();
        for d in &detectors {
            let points = roc_over(&members, rows, d);
            if points.is_empty() {
                continue;
            }
            let auroc = audit_rows
                .iter()
                .find(|a| a.group == group && &a.detector == d)
                .and_then(|a| a.auroc)
                .map_or(String::new(), |a| format!(" · {a:.3}"));
            let base = d.strip_suffix(by_class::SUFFIX);
            curves.push(Line {
                name: format!("{d}{auroc}"),
                points,
                dashed: base.is_some(),
                color: bases
                    .iter()
                    .position(|b| *b == base.unwrap_or(d))
                    .unwrap_or(0),
            });
        }
        if curves.is_empty() {
            continue;
        }
        curves.push(Line {
            name: "chance".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            dashed: true,
            color: bases.len(),
        });
        let file = group_roc_file(&group);
        let png = lines(
            &format!("ROC, {group}"),
            "false positive rate",
            "true positive rate",
            &curves,
            false,
        )
        .map_err(|e| crate::SweepError::table(std::path::Path::new(&file), e))?;
        out.push((file, png));
    }
    Ok(out)
}

/// The ROC picture of one detector (PNG bytes), with the chance diagonal.
pub fn roc_png(
    detector: &str,
    points: &[(f64, f64)],
    auroc: Option<f64>,
) -> crate::Result<Vec<u8>> {
    use iscp_figures::plots::{lines, Line};
    let title = match auroc {
        Some(a) => format!("ROC of {detector} · AUROC {a:.3}"),
        None => format!("ROC of {detector}"),
    };
    let curve = Line {
        name: detector.to_string(),
        points: points.to_vec(),
        dashed: false,
        color: 0,
    };
    let chance = Line {
        name: "chance".into(),
        points: vec![(0.0, 0.0), (1.0, 1.0)],
        dashed: true,
        color: 5,
    };
    lines(
        &title,
        "false positive rate",
        "true positive rate",
        &[curve, chance],
        false,
    )
    .map_err(|e| crate::SweepError::table(std::path::Path::new("images/roc"), e))
}

/// What an audit unit writes: the `audit` rows, the `detection` rows it computes itself (the
/// per-class readings and the combined detector's; their `unit_id` set to the unit's own), and
/// the ROC pictures.
pub struct AuditOutput {
    pub rows: Vec<AuditRow>,
    pub derived: Vec<DetectionRow>,
    pub files: crate::work::Files,
}

/// The audit unit's body: the population's ground truth from its prepare units' `models` parts,
/// every detector's rows from the `detection` parts, and one ROC picture per detector.
pub fn run_audit(
    inputs: &crate::work::Inputs,
    p: &crate::units::AuditParams,
) -> crate::Result<AuditOutput> {
    let mut models = Vec::new();
    for id in &p.prepares {
        if let Some(m) = inputs.model(id)? {
            models.push(m);
        }
    }
    let mut rows = Vec::new();
    for id in &p.detections {
        if let Some(b) = inputs.batches(Table::Detection, id)? {
            rows.extend(crate::tables::detection_rows(
                b,
                &format!("{}/{id}", Table::Detection),
            )?);
        }
    }
    if models.is_empty() || rows.is_empty() {
        return Err(crate::SweepError::Missing(
            "no model or no detector of the population finished".into(),
        ));
    }
    let rows = with_combined(&models, &rows);
    let mut audit_rows = score_detectors(&models, &rows, p.calibration_share, p.seed);
    // A model whose training failed has no `models` row: it is missing for every detector.
    let unprepared = p.prepares.len().saturating_sub(models.len()) as i64;
    for r in &mut audit_rows {
        r.missing += unprepared;
    }
    let mut files = Vec::new();
    let truth = truth_of(&models);
    let truth = by_name(&truth);
    for r in audit_rows.iter().filter(|r| r.group == ALL) {
        let points = roc_over(&truth, &rows, &r.detector);
        if !points.is_empty() {
            files.push((
                roc_file(&r.detector),
                roc_png(&r.detector, &points, r.auroc)?,
            ));
        }
    }
    files.extend(group_roc_pictures(&models, &rows, &audit_rows)?);
    let derived = rows
        .into_iter()
        .filter(|r| is_derived(&r.detector))
        .collect();
    Ok(AuditOutput {
        rows: audit_rows,
        derived,
        files,
    })
}

/// What the calibrated threshold promises, in words: how many held-out clean models set it and the
/// share of new clean models expected to pass it (over 5% with under 19 held out). None when no
/// threshold was calibrated.
pub fn calibration_note(rows: &[AuditRow]) -> Option<String> {
    let r = rows
        .iter()
        .filter(|r| r.group == ALL && r.calibrated_threshold.is_some())
        .max_by_key(|r| r.calibration_models)?;
    let n = r.calibration_models.max(0) as usize;
    let bound = held_out_fpr_bound(n, MAX_FPR);
    let short = if bound > MAX_FPR {
        format!(
            ", over {:.0}%: hold out at least {} clean models for a threshold that keeps it",
            MAX_FPR * 100.0,
            min_held_out(MAX_FPR)
        )
    } else {
        String::new()
    };
    Some(format!(
        "calibrated FPR: each threshold is set on {n} held-out clean models and measured on the \
         other {} clean ones; a new clean model passes it with probability {:.1}% on average{short}",
        (r.clean - r.calibration_models).max(0),
        bound * 100.0
    ))
}

/// The fewest held-out clean models whose calibrated threshold keeps FPR <= `max_fpr`.
fn min_held_out(max_fpr: f64) -> usize {
    (1..10_000)
        .find(|&n| held_out_fpr_bound(n, max_fpr) <= max_fpr)
        .unwrap_or(10_000)
}

/// The audit as lines for a person: one per detector and group.
pub fn describe(rows: &[AuditRow]) -> Vec<String> {
    let f = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.3}"));
    let mut out = vec![format!(
        "{:<24} {:<18} {:>6} {:>21} {:>14} {:>10} {:>10} {:>9} {:>11} {:>8} {:>8}",
        "detector",
        "group",
        "models",
        "AUROC (95% interval)",
        "AUROC right t.",
        "TPR@5%FPR",
        "rule TPR/FPR",
        "cal. FPR",
        "target top1",
        "IoU",
        "s/model"
    )];
    for r in rows {
        out.push(format!(
            "{:<24} {:<18} {:>6} {:>21} {:>14} {:>10} {:>10} {:>9} {:>11} {:>8} {:>8.1}",
            r.detector,
            r.group,
            format!("{}+{}", r.poisoned, r.clean),
            format!("{} ({}–{})", f(r.auroc), f(r.auroc_low), f(r.auroc_high)),
            f(r.auroc_right_target),
            f(r.tpr_at_5_fpr),
            format!("{}/{}", f(r.rule_tpr), f(r.rule_fpr)),
            f(r.calibrated_fpr),
            f(r.target_top1),
            f(r.mean_trigger_iou),
            r.seconds_per_model
        ));
    }
    out.extend(calibration_note(rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, kind: &str, target: Option<i64>, failed: Option<bool>) -> ModelRow {
        ModelRow {
            unit_id: format!("u-{name}"),
            setting: name.into(),
            setting_kind: kind.into(),
            architecture: "small-cnn".into(),
            source: "trained".into(),
            checkpoint_sha256: String::new(),
            clean_accuracy: 0.9,
            attack_success_rate: None,
            poison_target: target,
            trigger: None,
            trigger_family: None,
            trigger_row: None,
            trigger_col: None,
            trigger_size: None,
            attack_failed: failed,
            robust_accuracy: None,
            poison_rate: None,
            poisoned_images: None,
            train_epochs: None,
            training_s: 0.0,
            forward_images_per_s: None,
            search_images_per_s: None,
            train_images_per_s: None,
        }
    }

    fn det(model: &str, score: f64, flagged: bool, predicted: i64) -> DetectionRow {
        DetectionRow {
            unit_id: format!("d-{model}"),
            model: model.into(),
            detector: ISCP.into(),
            score,
            max_index: score,
            max_pw: Some(0.5),
            min_norm: None,
            flagged,
            flagged_classes: String::new(),
            predicted_target: predicted,
            trigger_iou: Some(0.5),
            seconds: 2.0,
            class_stats: None,
        }
    }

    #[test]
    fn audit_by_hand_leaves_out_failed_attacks_and_counts_the_missing() {
        let models = vec![
            model("b0", "badnets", Some(1), Some(false)),
            model("b1", "badnets", Some(2), Some(false)),
            model("b2", "badnets", Some(3), Some(true)), // attack failed: left out
            model("c0", "natural", None, None),
            model("c1", "natural", None, None),
            model("c2", "natural", None, None),
        ];
        let rows = vec![
            det("b0", 5.0, true, 1),
            det("b1", 1.0, false, 0),
            det("b2", 0.0, false, 3),
            det("c0", 2.0, true, 4),
            det("c1", 0.5, false, 4),
            // c2 has no row: missing
        ];
        let a = audit(&models, &rows, 0.0, 1);
        assert_eq!(a.len(), 1);
        let a = &a[0];
        assert_eq!(
            (a.models, a.poisoned, a.clean, a.attack_failed, a.missing),
            (4, 2, 2, 1, 1)
        );
        // pairs (b0,c0) (b0,c1) (b1,c1) won, (b1,c0) lost: 3/4.
        assert_eq!(a.auroc, Some(0.75));
        // b1 names class 0, not its target 2: a miss, below both clean models. (b1,c1) is lost
        // too: 2/4.
        assert_eq!(a.auroc_right_target, Some(0.5));
        assert_eq!((a.rule_tpr, a.rule_fpr), (Some(0.5), Some(0.5)));
        assert_eq!(a.target_top1, Some(0.5));
        assert_eq!(a.mean_trigger_iou, Some(0.5));
        // 2 clean models: 5% allows none above the threshold, just above 2.0: TPR 1/2.
        assert_eq!(a.tpr_at_5_fpr, Some(0.5));
        assert!(a.threshold_at_5_fpr.unwrap() > 2.0);
        assert_eq!(a.calibration_models, 0);
        assert_eq!(a.calibrated_threshold, None);
        let lo = a.auroc_low.unwrap();
        let hi = a.auroc_high.unwrap();
        assert!(
            lo <= 0.75 && 0.75 <= hi && lo >= 0.0 && hi <= 1.0,
            "{lo} {hi}"
        );
        let text = describe(std::slice::from_ref(a));
        assert!(
            text[1].starts_with("iscp") && text[1].contains("0.750"),
            "{}",
            text[1]
        );
    }

    #[test]
    fn families_and_architectures_get_their_own_rows() {
        let mut models = Vec::new();
        let mut rows = Vec::new();
        for (name, family, arch, score) in [
            ("b0", "blend", "small-cnn", 5.0),
            ("b1", "warp", "gap-cnn", 0.1),
            ("b2", "warp", "small-cnn", 4.0),
        ] {
            let mut m = model(name, "badnets", Some(1), Some(false));
            m.trigger_family = Some(family.into());
            m.architecture = arch.into();
            models.push(m);
            rows.push(det(name, score, score > 1.0, 1));
        }
        for (name, arch, score) in [("c0", "small-cnn", 0.5), ("c1", "gap-cnn", 0.2)] {
            let mut m = model(name, "natural", None, None);
            m.architecture = arch.into();
            models.push(m);
            rows.push(det(name, score, false, 0));
        }
        let a = audit(&models, &rows, 0.0, 1);
        let got: Vec<(&str, i64, i64, Option<f64>)> = a
            .iter()
            .map(|r| (r.group.as_str(), r.poisoned, r.clean, r.auroc))
            .collect();
        let pictures = group_roc_pictures(&models, &rows, &a).unwrap();
        let files: Vec<&str> = pictures.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            files,
            [
                "images/roc-family-blend.png",
                "images/roc-family-warp.png",
                "images/roc-arch-gap-cnn.png",
                "images/roc-arch-small-cnn.png"
            ]
        );
        assert!(pictures.iter().all(|(_, png)| png.starts_with(b"\x89PNG")));
        assert_eq!(
            got,
            [
                ("all", 3, 2, Some(4.0 / 6.0)),
                ("family=blend", 1, 2, Some(1.0)),
                ("family=warp", 2, 2, Some(0.5)),
                ("arch=gap-cnn", 1, 1, Some(0.0)),
                ("arch=small-cnn", 2, 1, Some(1.0)),
            ]
        );
    }

    #[test]
    fn the_calibration_note_says_what_the_threshold_promises() {
        let mut models = vec![model("b0", "badnets", Some(0), Some(false))];
        let mut rows = vec![det("b0", 10.0, true, 0)];
        for i in 0..4 {
            models.push(model(&format!("c{i}"), "natural", None, None));
            rows.push(det(&format!("c{i}"), f64::from(i), false, 1));
        }
        let base = audit(&models, &rows, 0.5, 3)[0].clone();
        let row = |held: i64, clean: i64| AuditRow {
            calibration_models: held,
            clean,
            calibrated_threshold: Some(1.0),
            ..base.clone()
        };
        let few = calibration_note(&[row(5, 10)]).unwrap();
        assert!(
            few.contains("5 held-out") && few.contains("other 5"),
            "{few}"
        );
        assert!(
            few.contains("16.7%") && few.contains("at least 19"),
            "{few}"
        );
        let enough = calibration_note(&[row(20, 40)]).unwrap();
        assert!(
            enough.contains("4.8%") && !enough.contains("at least"),
            "{enough}"
        );
        let none = AuditRow {
            calibrated_threshold: None,
            ..row(5, 10)
        };
        assert_eq!(calibration_note(&[none]), None);
    }

    #[test]
    fn the_calibrated_threshold_comes_from_held_out_clean_models() {
        let mut models = vec![model("b0", "badnets", Some(0), Some(false))];
        let mut rows = vec![det("b0", 10.0, true, 0)];
        for i in 0..10 {
            let name = format!("c{i}");
            models.push(model(&name, "natural", None, None));
            rows.push(det(&name, i as f64 / 10.0, false, 1));
        }
        let a = &audit(&models, &rows, 0.5, 3)[0];
        assert_eq!(a.calibration_models, 5);
        let t = a.calibrated_threshold.unwrap();
        // Above every held-out clean score, so the held-out FPR is 0 and the poisoned model is found.
        assert!(t <= 1.0 && t > 0.0, "{t}");
        assert_eq!(a.calibrated_tpr, Some(1.0));
        assert!(a.calibrated_fpr.unwrap() <= 0.6);
        let roc = roc(&models, &rows, ISCP);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert!(!roc_png(ISCP, &roc, a.auroc).unwrap().is_empty());
    }
}
