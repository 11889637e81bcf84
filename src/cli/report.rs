//! `iscp report DIR`: the HTML report of one experiment's results folder, or of every
//! experiment under a results root; prints each page's path.

use anyhow::{bail, Context};
use iscp_sweep::report::{is_experiment, write_report};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// An experiment's results folder (`results/<experiment name>`), or a folder of them
    /// (`results`): one page per experiment, `<folder>/report.html`.
    #[arg(default_value = "results")]
    pub dir: PathBuf,
}

pub fn report(a: ReportArgs) -> anyhow::Result<()> {
    let mut folders = Vec::new();
    if is_experiment(&a.dir) {
        folders.push(a.dir.clone());
    } else {
        let entries =
            std::fs::read_dir(&a.dir).with_context(|| format!("reading {}", a.dir.display()))?;
        for e in entries.filter_map(|e| e.ok()) {
            if is_experiment(&e.path()) {
                folders.push(e.path());
            }
        }
        folders.sort();
    }
    if folders.is_empty() {
        bail!(
            "{} holds no experiment's results (no models/, patterns/, searches/ or scan/ folder, \
             here or one level down)",
            a.dir.display()
        );
    }
    for dir in folders {
        let name = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "experiment".into());
        let page = write_report(&dir, &name)
            .with_context(|| format!("writing the report of {}", dir.display()))?;
        println!("{}", page.display());
    }
    Ok(())
}
