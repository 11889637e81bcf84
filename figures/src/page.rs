//! A sweep's report as one HTML page (minijinja, escaped): what ran, the models, PW by size per
//! setting, the scan's verdicts, the plots and pictures (files beside the page, by relative
//! path), the failures, and how to read the tables yourself.

use crate::{Error, Result};
use serde::Serialize;

/// A table as text: its column names and rows; `marked` rows are highlighted (flagged classes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub marked: Vec<bool>,
}

impl Table {
    pub fn new(columns: &[&str]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            ..Table::default()
        }
    }

    pub fn push(&mut self, row: Vec<String>, marked: bool) {
        self.rows.push(row);
        self.marked.push(marked);
    }
}

/// A picture on the page: its path relative to the page, a title and what it shows.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub src: String,
    pub title: String,
    pub caption: String,
}

/// A titled table with a line saying how to read it.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub title: String,
    pub note: String,
    pub table: Table,
}

/// A population's audit: detection quality per detector and group, every model most suspect
/// first, the ROC pictures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Audit {
    pub quality: Table,
    /// What the calibrated threshold promises (held-out clean models, expected FPR), if any.
    pub calibration: Option<String>,
    pub models: Table,
    pub roc: Vec<Figure>,
}

/// Everything the page shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub experiment: String,
    /// Lines at the top answering "what did we find" (verdicts, best PW).
    pub findings: Vec<String>,
    pub units: String,
    /// A population's audit, first when there is one.
    pub audit: Option<Audit>,
    pub models: Table,
    /// Fold the per-setting PW tables away (many settings: a population).
    pub fold_pw: bool,
    pub pw: Vec<Section>,
    pub scans: Vec<Section>,
    pub plots: Vec<Figure>,
    pub pictures: Vec<Figure>,
    pub failures: Table,
    /// The results folder, as the snippets name it.
    pub folder: String,
}

const TEMPLATE: &str = include_str!("report.html");

/// The page's HTML.
pub fn render(report: &Report) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| Error::Template(e.to_string()))?;
    env.get_template("report.html")
        .and_then(|t| t.render(report))
        .map_err(|e| Error::Template(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_and_holds_every_row() {
        let mut models = Table::new(&["setting", "clean accuracy"]);
        models.push(vec!["<natural>".into(), "0.91".into()], false);
        models.push(vec!["badnets".into(), "0.90".into()], true);
        let html = render(&Report {
            experiment: "exp".into(),
            findings: vec!["badnets looks backdoored: class 0".into()],
            models,
            ..Report::default()
        })
        .unwrap();
        assert!(html.contains("&lt;natural&gt;"), "escaped");
        assert!(!html.contains("<natural>"));
        assert!(html.contains("badnets looks backdoored: class 0"));
        assert_eq!(html.matches("<tr class=\"marked\">").count(), 1);
    }
}
