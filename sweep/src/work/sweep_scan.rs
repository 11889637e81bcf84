//! The backdoor scan of a swept setting, from the best patterns of its evaluations, and in a
//! population the model's `iscp` detection row.

use super::cleanse_unit::argmax;
use super::{group_name, Inputs};
use crate::scan::{scan_from_patterns, ScanRow};
use crate::spec::SettingSpec;
use crate::tables::{DetectionRow, PatternRow, ISCP};
use crate::units::ScanParams;
use crate::Result;
use iscp_engine::anomaly::{top_k_iou, FLAG_THRESHOLD, MIN_PW};

/// The scan of one setting, per (alpha, objective, variant) group: its rows (the `model` column
/// names the group, `<setting>-alpha<α>-<objective>-<variant>`), in the order the groups appear.
pub fn scan_setting(
    inputs: &Inputs,
    setting: &str,
    evaluations: &[String],
    size: f64,
) -> Result<Vec<(String, Vec<ScanRow>)>> {
    let mut groups: Vec<(String, Vec<PatternRow>)> = Vec::new();
    for u in evaluations {
        let Some(rows) = inputs.patterns(u)? else {
            continue;
        };
        for row in rows {
            let key = group_name(setting, row.alpha, &row.objective, Some(&row.variant));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(row),
                None => groups.push((key, vec![row])),
            }
        }
    }
    Ok(groups
        .into_iter()
        .map(|(key, rows)| {
            let scan = scan_from_patterns(&key, &rows, size);
            (key, scan)
        })
        .collect())
}

/// How far a class is into the scan's fixed rule (index > 2 and PW ≥ 0.75): min(index / 2,
/// PW / 0.75), at least 1 when both hold. A NaN PW counts as 0.
pub fn rule_margin(index: f64, pw: f64) -> f64 {
    let pw = if pw.is_nan() { 0.0 } else { pw };
    (index / FLAG_THRESHOLD).min(pw / MIN_PW)
}

/// The `iscp` detection row of a population's model, from the first group of its scan: the
/// largest rule margin as the score, the flagged classes, the class with the largest index as
/// the predicted target, the IoU of that class's best mask with the true trigger, and the seconds
/// its searches and evaluations took. None when the scan has no rows.
/// Each class's PW, indexed by class (NaN for a class the scan has no row of).
fn class_pw(scan: &[ScanRow]) -> Vec<f32> {
    let k = scan.iter().map(|r| r.class + 1).max().unwrap_or(0).max(0) as usize;
    let mut out = vec![f32::NAN; k];
    for r in scan {
        if let Ok(c) = usize::try_from(r.class) {
            out[c] = r.pw as f32;
        }
    }
    out
}

pub fn detect_setting(
    inputs: &Inputs,
    unit_id: &str,
    setting: &SettingSpec,
    p: &ScanParams,
    shape: [i64; 3],
) -> Result<Option<DetectionRow>> {
    let groups = scan_setting(inputs, &p.setting, &p.evaluations, p.size)?;
    let Some((group, scan)) = groups.into_iter().find(|(_, s)| !s.is_empty()) else {
        return Ok(None);
    };
    let index: Vec<f64> = scan.iter().map(|r| r.anomaly_index).collect();
    let top = &scan[argmax(&index)];
    let mut best_search = None;
    let mut searches = std::collections::HashSet::new();
    let mut evaluate_s = std::collections::HashMap::new();
    for u in &p.evaluations {
        for row in inputs.patterns(u)?.unwrap_or_default() {
            if group_name(&p.setting, row.alpha, &row.objective, Some(&row.variant)) != group {
                continue;
            }
            evaluate_s.insert(row.unit_id.clone(), row.evaluate_s);
            searches.insert(row.search_id.clone());
            if row.is_best && row.class == top.class && (row.size - p.size).abs() < 1e-12 {
                best_search = Some(row.search_id.clone());
            }
        }
    }
    let mut search_s = 0.0;
    // The group's searches (the scan reads every search of the setting, of every group).
    for id in p.searches.iter().filter(|id| searches.contains(*id)) {
        if let Ok(s) = inputs.search(id) {
            search_s += s.duration_s;
        }
    }
    let truth = setting.trigger_pixels(shape);
    let trigger_iou = match (&truth, &best_search) {
        (Some(t), Some(id)) => Some(top_k_iou(&inputs.search(id)?.mask, t)),
        _ => None,
    };
    let flagged: Vec<String> = scan
        .iter()
        .filter(|r| r.flagged)
        .map(|r| r.class.to_string())
        .collect();
    Ok(Some(DetectionRow {
        unit_id: unit_id.to_string(),
        model: p.setting.clone(),
        detector: ISCP.into(),
        score: scan
            .iter()
            .map(|r| rule_margin(r.anomaly_index, r.pw))
            .fold(f64::NEG_INFINITY, f64::max),
        max_index: top.anomaly_index,
        max_pw: scan
            .iter()
            .map(|r| r.pw)
            .filter(|v| !v.is_nan())
            .reduce(f64::max),
        min_norm: None,
        flagged: !flagged.is_empty(),
        flagged_classes: flagged.join(","),
        predicted_target: top.class,
        trigger_iou,
        seconds: search_s + evaluate_s.values().sum::<f64>(),
        class_stats: Some(class_pw(&scan)),
    }))
}

#[cfg(test)]
mod tests {
    use super::rule_margin;

    #[test]
    fn the_rule_margin_reaches_1_exactly_when_both_parts_of_the_rule_hold() {
        assert_eq!(rule_margin(4.0, 1.5), 2.0);
        assert_eq!(rule_margin(2.0, 0.75), 1.0);
        assert!(
            rule_margin(6.0, 0.3) < 1.0,
            "anomalous but weak: a natural class"
        );
        assert!(rule_margin(1.0, 1.2) < 1.0, "strong but not anomalous");
        assert_eq!(rule_margin(3.0, f64::NAN), 0.0);
    }
}
