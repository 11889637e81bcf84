//! Reading back the tables a report summarises: every part of a table folder, and the rows of
//! the scan, failures and UAP baselines (only the columns a report shows).

use super::read::{read_rows, rows};
use super::{done_units, part_path, FailureRow, ModelRow, PatternRow};
use crate::scan::ScanRow;
use crate::Result;
use std::path::Path;

/// The rows of every part of `dir` (sorted by part name), read by `read`; none when absent.
pub fn read_table<T>(dir: &Path, read: impl Fn(&Path) -> Result<Vec<T>>) -> Result<Vec<T>> {
    let mut names: Vec<String> = done_units(dir)?.into_iter().collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        out.extend(read(&part_path(dir, &n))?);
    }
    Ok(out)
}

pub fn read_models(dir: &Path) -> Result<Vec<ModelRow>> {
    read_table(dir, super::read_model_rows)
}

pub fn read_patterns(dir: &Path) -> Result<Vec<PatternRow>> {
    read_table(dir, super::read_pattern_rows)
}

pub fn read_scan_rows(path: &Path) -> Result<Vec<ScanRow>> {
    read_rows(path)
}

/// The failure rows of a part (without their time).
pub fn read_failure_rows(path: &Path) -> Result<Vec<FailureRow>> {
    rows(path, |c, i| {
        Ok(FailureRow {
            unit_id: c.get("unit_id", i)?,
            unit_kind: c.get("unit_kind", i)?,
            attempt: c.get("attempt", i)?,
            worker: c.get("worker", i)?,
            error: c.get("error", i)?,
            reason: c.get("reason", i)?,
            retryable: c.get("retryable", i)?,
            // The report does not show when; the `time` column stays in the table.
            time_ms: 0,
        })
    })
}

/// One UAP baseline's success: setting, class, ε and attack success rate.
#[derive(Debug, Clone, PartialEq)]
pub struct UapPoint {
    pub setting: String,
    pub class: i64,
    pub epsilon: f64,
    pub success: f64,
}

/// The UAP rows of a `baselines` part (Grad-CAM rows are skipped).
pub fn read_uap_points(path: &Path) -> Result<Vec<UapPoint>> {
    let all = rows(path, |c, i| {
        Ok((c.get::<String>("method", i)? == "uap")
            .then_some(())
            .and_then(|_| {
                Some(UapPoint {
                    setting: c.get("setting", i).ok()?,
                    class: c.get("class", i).ok()?,
                    epsilon: c.get::<Option<f64>>("epsilon", i).ok()??,
                    success: c.get::<Option<f64>>("pw", i).ok()??,
                })
            }))
    })?;
    Ok(all.into_iter().flatten().collect())
}
