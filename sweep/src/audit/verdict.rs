//! A model's verdict from its detection rows, the same in `iscp audit`'s table and the report: the
//! combined verdict when the model's per-class readings had other models to compare with, else
//! ISCP's or Neural Cleanse's fixed rule.

use super::by_class;
use crate::tables::{DetectionRow, COMBINED, ISCP, MM_BD, NEURAL_CLEANSE, UAP};
use std::collections::HashMap;

/// The row that decides a model's verdict, among its rows by detector: the combined verdict
/// (flagged when one of its per-class readings reaches `by_class::FLAG_Z`) when a per-class
/// reading had a reference; otherwise the first of ISCP's and Neural Cleanse's rows whose fixed
/// rule flags the model (MM-BD's and the UAP's fixed rules flag too many clean models to decide
/// alone: docs/benchmarks.md). None: nothing flags it.
pub fn deciding<'a>(rows: &HashMap<&str, &'a DetectionRow>) -> Option<&'a DetectionRow> {
    let read_against_others = [ISCP, NEURAL_CLEANSE, MM_BD, UAP].iter().any(|d| {
        rows.get(by_class::name(d).as_str())
            .is_some_and(|r| r.score.is_finite())
    });
    match rows.get(COMBINED) {
        Some(c) if read_against_others => Some(*c),
        _ => [ISCP, NEURAL_CLEANSE]
            .iter()
            .filter_map(|d| rows.get(d).copied())
            .find(|r| r.flagged),
    }
}

/// Whether the model is a suspect, and the class its deciding row names when it is.
pub fn suspect(rows: &HashMap<&str, &DetectionRow>) -> Option<i64> {
    deciding(rows)
        .filter(|r| r.flagged)
        .map(|r| r.predicted_target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(detector: &str, score: f64, flagged: bool, target: i64) -> DetectionRow {
        DetectionRow {
            unit_id: String::new(),
            model: "m".into(),
            detector: detector.into(),
            score,
            max_index: score,
            max_pw: None,
            min_norm: None,
            flagged,
            flagged_classes: String::new(),
            predicted_target: target,
            trigger_iou: None,
            seconds: 1.0,
            class_stats: None,
        }
    }

    fn by_detector(rows: &[DetectionRow]) -> HashMap<&str, &DetectionRow> {
        rows.iter().map(|r| (r.detector.as_str(), r)).collect()
    }

    #[test]
    fn the_combined_verdict_decides_when_the_classes_were_read_against_others() {
        // ISCP's fixed rule flags class 8, the readings against other models see nothing.
        let rows = [
            row(ISCP, 1.2, true, 8),
            row("iscp-by-class", 1.5, false, 8),
            row(COMBINED, 0.3, false, 8),
        ];
        assert_eq!(suspect(&by_detector(&rows)), None);
        // MM-BD's reading flags class 4: the combined verdict is flagged, it names 4.
        let rows = [
            row(ISCP, 0.2, false, 1),
            row("mm-bd-by-class", 14.0, true, 4),
            row(COMBINED, 1.4, true, 4),
        ];
        assert_eq!(suspect(&by_detector(&rows)), Some(4));
    }

    #[test]
    fn a_lone_model_is_judged_by_iscp_or_neural_cleanse() {
        // No reference: the readings have no score.
        let rows = [
            row(ISCP, 0.4, false, 1),
            row(NEURAL_CLEANSE, 2.5, true, 6),
            row(MM_BD, 9.0, true, 2),
            row("neural-cleanse-by-class", f64::NAN, false, 0),
            row(COMBINED, 0.1, false, 2),
        ];
        assert_eq!(suspect(&by_detector(&rows)), Some(6));
        let rows = [row(ISCP, 0.4, false, 1), row(MM_BD, 9.0, true, 2)];
        assert_eq!(
            suspect(&by_detector(&rows)),
            None,
            "MM-BD alone decides nothing"
        );
    }
}
