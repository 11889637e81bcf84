//! Reading back the tables a report summarises: every part of a table folder, and the rows of
//! the scan, failures and UAP baselines (only the columns a report shows).

use super::read::rows;
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
    rows(path, |c, i| {
        Ok(ScanRow {
            model: c.s("model", i)?,
            class: c.i("class", i)?,
            class_name: c.s("class_name", i)?,
            canvas_kind: c.s("canvas_kind", i)?,
            canvas_index: c.i("canvas_index", i)?,
            size: c.f("size", i)?,
            k: c.i("k", i)?,
            pw: c.f("pw", i)?,
            anomaly_index: c.f("anomaly_index", i)?,
            flagged: c.b("flagged", i)?,
        })
    })
}

/// The failure rows of a part (without their time).
pub fn read_failure_rows(path: &Path) -> Result<Vec<FailureRow>> {
    rows(path, |c, i| {
        Ok(FailureRow {
            unit_id: c.s("unit_id", i)?,
            unit_kind: c.s("unit_kind", i)?,
            attempt: c.i("attempt", i)?,
            worker: c.s("worker", i)?,
            error: c.s("error", i)?,
            reason: c.s("reason", i)?,
            retryable: c.b("retryable", i)?,
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
        Ok((c.s("method", i)? == "uap").then_some(()).and_then(|_| {
            Some(UapPoint {
                setting: c.s("setting", i).ok()?,
                class: c.i("class", i).ok()?,
                epsilon: c.of("epsilon", i).ok()??,
                success: c.of("pw", i).ok()??,
            })
        }))
    })?;
    Ok(all.into_iter().flatten().collect())
}
