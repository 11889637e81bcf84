//! `iscp bench --estimates SPEC`: how far `iscp plan`'s time and the progress ETA are from what a
//! run takes. It times the spec's models and prints the plan's estimate per unit kind, runs the
//! spec with `iscp run` in a fresh folder (its progress lines read as they come, each with the
//! time it came), then prints the time each kind took (from the tables' own timings) beside its
//! estimate, the total beside the plan's, and the ETA the progress showed at 10%, 25%, 50% and 75%
//! of the work beside the time that was actually left.

use super::progress::words::duration;
use anyhow::{bail, Context};
use iscp_proto::Table;
use iscp_sweep::cost::{data_shape, estimate};
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::tables;
use iscp_sweep::throughputs::measure_plans;
use iscp_sweep::units::plan as expand;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One progress line: seconds since the run started, the share of the work done, the ETA shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtaPoint {
    pub at: f64,
    pub fraction: f64,
    pub eta: f64,
}

/// Runs the benchmark on `spec` (its own device and threads, or `device`).
pub fn bench_estimates(spec_path: &Path, device: &str) -> anyhow::Result<()> {
    let spec = LoadedSpec::load(spec_path)?;
    let shape = data_shape(&spec)?;
    spec.check_data(&shape)?;
    let plans = expand(&spec, shape.classes, shape.train);
    let dev = iscp_engine::parse_device(device)?;
    let t = Instant::now();
    let measured = measure_plans(&spec, &plans, &shape, dev, 8, &mut |_| {});
    println!(
        "{}: timed {} model(s) on {device} in {:.1} s",
        spec.spec.name.get_ref(),
        measured.timed,
        t.elapsed().as_secs_f64()
    );
    let rate = |name: &str| measured.by_setting.get(name).copied();
    let kinds: Vec<(&str, Option<f64>)> = estimate(&spec, &plans, &shape, &rate)
        .into_iter()
        .filter(|(_, c)| c.units > 0)
        .map(|(k, c)| (k, c.seconds))
        .collect();
    let planned: f64 = kinds.iter().filter_map(|k| k.1).sum();
    let dir = std::env::temp_dir().join(format!("iscp-bench-estimates-{}", std::process::id()));
    let ran = run_watching(spec_path, &dir, device).and_then(|(wall, points)| {
        let root = dir.join(spec.spec.name.get_ref());
        Ok((wall, points, kind_seconds(&root)?))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (wall, points, actual) = ran?;
    println!(
        "{:<16} {:>12} {:>12} {:>8}",
        "kind", "estimated s", "measured s", "ratio"
    );
    for (kind, est) in &kinds {
        let got = actual.get(*kind).copied();
        let cell = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let ratio = match (est, got) {
            (Some(e), Some(g)) if *e > 0.0 => format!("{:.2}", g / e),
            _ => "-".into(),
        };
        println!(
            "{:<16} {:>12} {:>12} {:>8}",
            kind,
            cell(*est),
            cell(got),
            ratio
        );
    }
    println!(
        "total: estimated {} (plan), took {} (wall): ratio {:.2} (goal: within 1.5x either way)",
        duration(Duration::from_secs_f64(planned)),
        duration(Duration::from_secs_f64(wall)),
        wall / planned.max(1e-9)
    );
    let mut said = Vec::new();
    for share in [0.10, 0.25, 0.50, 0.75] {
        // The first line at or past the share, while enough is left to time.
        let point = points
            .iter()
            .find(|p| p.fraction >= share && p.fraction < 0.95);
        if point.is_some_and(|p| said.contains(&p.at)) {
            continue;
        }
        match point {
            Some(p) => {
                said.push(p.at);
                println!(
                "at {:.0}% of the work ({:.0} s in): ETA {:.0} s, actually left {:.0} s: ratio {:.2}",
                100.0 * p.fraction,
                p.at,
                p.eta,
                wall - p.at,
                (wall - p.at) / p.eta.max(1.0)
            )
            }
            None => println!(
                "no progress line between {:.0}% and 95% of the work",
                100.0 * share
            ),
        }
    }
    Ok(())
}

/// `iscp run` on the spec into `dir`, its progress lines (stderr, no terminal) timed as they come;
/// returns the wall seconds and every line's ETA point.
fn run_watching(spec: &Path, dir: &Path, device: &str) -> anyhow::Result<(f64, Vec<EtaPoint>)> {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .arg("run")
        .arg(spec)
        .arg("--results")
        .arg(dir)
        .args(["--device", device])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting iscp run")?;
    let mut points = Vec::new();
    let mut tail = Vec::new();
    if let Some(err) = child.stderr.take() {
        for line in std::io::BufReader::new(err).lines() {
            let line = line?;
            if let Some(p) = eta_point(&line, started.elapsed().as_secs_f64()) {
                points.push(p);
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait()?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("iscp run failed ({status}):\n{}", tail.join("\n"));
    }
    Ok((wall, points))
}

/// The ETA point of a progress line (`… · 96/146 units, 62% of the work, ETA 1m 05s`).
pub fn eta_point(line: &str, at: f64) -> Option<EtaPoint> {
    let standing = line.rsplit(" · ").next()?;
    let percent: f64 = standing
        .split(", ")
        .find_map(|p| p.strip_suffix("% of the work"))?
        .trim()
        .parse()
        .ok()?;
    let eta = parse_duration(standing.split("ETA ").nth(1)?.trim())?;
    Some(EtaPoint {
        at,
        fraction: percent / 100.0,
        eta,
    })
}

/// Seconds of a duration as progress words write it (`<1s`, `4s`, `1m 05s`, `2h 03m`).
pub fn parse_duration(s: &str) -> Option<f64> {
    if s == "<1s" {
        return Some(0.5);
    }
    let mut total = 0.0;
    for part in s.split_whitespace() {
        let (n, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit())?);
        let n: f64 = n.parse().ok()?;
        total += n * match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            _ => return None,
        };
    }
    Some(total)
}

/// Compute seconds per unit kind from the tables' own timings: training (`models.training_s`),
/// searches (`searches.duration_s`), evaluations (`patterns.evaluate_s`, once a unit) and
/// detectors (`detection.seconds`, by detector).
fn kind_seconds(root: &Path) -> anyhow::Result<BTreeMap<&'static str, f64>> {
    let mut out = BTreeMap::new();
    let mut add = |kind: &'static str, s: f64| *out.entry(kind).or_insert(0.0) += s;
    for r in tables::read_models(&Table::Models.dir(root))? {
        add("prepare-model", r.training_s);
    }
    for r in tables::read_table(&Table::Searches.dir(root), tables::read_search_rows)? {
        add("search", r.duration_s);
    }
    // Every row of a unit carries the unit's seconds: count each unit once.
    let mut seen = std::collections::HashSet::new();
    for r in tables::read_patterns(&Table::Patterns.dir(root))? {
        if seen.insert(r.unit_id.clone()) {
            add("evaluate", r.evaluate_s);
        }
    }
    for r in tables::read_detection_rows(&Table::Detection.dir(root))? {
        let kind = match r.detector.as_str() {
            d if d.starts_with(tables::NEURAL_CLEANSE) => "cleanse",
            tables::MM_BD => "max-margin",
            tables::UAP => "uap-scan",
            _ => continue,
        };
        add(kind, r.seconds);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_read_back() {
        let line = "[ 1m 05s] local@h cpu: 24 searches of natural in 40.2s · 96/146 units, 62% \
                    of the work, ETA 1m 05s";
        let p = eta_point(line, 65.0).unwrap();
        assert_eq!(p.at, 65.0);
        assert!((p.fraction - 0.62).abs() < 1e-9);
        assert_eq!(p.eta, 65.0);
        assert_eq!(parse_duration("2h 03m"), Some(7380.0));
        assert_eq!(parse_duration("<1s"), Some(0.5));
        assert_eq!(parse_duration("4s"), Some(4.0));
        assert!(eta_point("… 3/4 units, ETA estimating", 1.0).is_none());
    }
}
