//! The backdoor scan of a swept setting, from the best patterns already in its tables.

use super::Layout;
use crate::progress::Progress;
use crate::tables;
use crate::Result;

/// The backdoor scan of one setting from its best patterns, per (alpha, objective).
pub(super) fn sweep_scan(
    layout: &Layout,
    p: &crate::units::SettingPlan,
    size: f64,
    progress: &Progress,
) -> Result<()> {
    let mut groups: Vec<(String, Vec<tables::PatternRow>)> = Vec::new();
    for u in &p.evaluations {
        let path = tables::part_path(&layout.table("patterns"), &u.id);
        if !path.exists() {
            continue;
        }
        for row in tables::read_pattern_rows(&path)? {
            let key = super::group_name(
                &p.setting.name,
                row.alpha,
                &row.objective,
                Some(&row.variant),
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(row),
                None => groups.push((key, vec![row])),
            }
        }
    }
    for (key, rows) in groups {
        let scan_rows = crate::scan::scan_from_patterns(&key, &rows, size);
        crate::scan::write_scan(&layout.root, &key, &scan_rows, &[])?;
        progress.println(&format!("scan {key}: {}", crate::scan::verdict(&scan_rows)));
    }
    Ok(())
}
