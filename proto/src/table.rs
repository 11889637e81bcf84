//! The result tables, named once: every folder under a sweep's results, every table a unit kind
//! writes and every part on the wire takes its name from here.

use std::path::{Path, PathBuf};

/// A Parquet table of a sweep's results (`results/<sweep>/<name>/part-*.parquet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Derived,
    Models,
    Training,
    Searches,
    Patterns,
    Baselines,
    Scan,
    Transfer,
    Detection,
    Audit,
    /// Written by the coordinator (one row per failed attempt), never by a unit.
    Failures,
}

impl Table {
    /// The tables units write, whose parts the ledger records: every table but `failures`,
    /// which `ALL` lists last.
    pub const RESULTS: [Table; 10] = {
        let mut out = [Table::Failures; 10];
        let mut i = 0;
        while i < out.len() {
            out[i] = Table::ALL[i];
            i += 1;
        }
        out
    };

    /// Every table (`failures` last).
    pub const ALL: [Table; 11] = [
        Table::Derived,
        Table::Models,
        Table::Training,
        Table::Searches,
        Table::Patterns,
        Table::Baselines,
        Table::Scan,
        Table::Transfer,
        Table::Detection,
        Table::Audit,
        Table::Failures,
    ];

    /// Its folder name, as on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Table::Derived => "derived",
            Table::Models => "models",
            Table::Training => "training",
            Table::Searches => "searches",
            Table::Patterns => "patterns",
            Table::Baselines => "baselines",
            Table::Scan => "scan",
            Table::Transfer => "transfer",
            Table::Detection => "detection",
            Table::Audit => "audit",
            Table::Failures => "failures",
        }
    }

    /// The table named `name`.
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Its folder in a sweep's results folder `results`.
    pub fn dir(self, results: &Path) -> PathBuf {
        results.join(self.name())
    }

    /// The part of unit `unit` in a sweep's results folder `results`.
    pub fn part(self, results: &Path, unit: &str) -> PathBuf {
        self.dir(results).join(format!("part-{unit}.parquet"))
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn names_parse_back_and_results_are_all_but_failures() {
        for t in Table::ALL {
            assert_eq!(Table::parse(t.name()), Some(t));
        }
        assert_eq!(Table::parse("nope"), None);
        assert!(!Table::RESULTS.contains(&Table::Failures));
        assert_eq!(Table::RESULTS.len() + 1, Table::ALL.len());
    }

    #[test]
    fn parts_live_in_their_tables_folder() {
        let root = std::path::Path::new("results/s");
        assert_eq!(Table::Searches.dir(root), root.join("searches"));
        assert_eq!(
            Table::Patterns.part(root, "u1"),
            root.join("patterns").join("part-u1.parquet")
        );
    }
}
