//! The backdoor scan of a swept setting, from the best patterns of its evaluations.

use super::{group_name, Inputs};
use crate::scan::{scan_from_patterns, ScanRow};
use crate::tables::PatternRow;
use crate::Result;

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
