//! The reference pages cover the code: every CLI flag of every subcommand (from the binary's own
//! `--help`), every spec key (from the serde structs of `sweep/src/spec/keys.rs`) and every column
//! of every Parquet table (from the tables' own Arrow schemas) is written in `docs/reference/`.

use crate::helpers::iscp;

fn page(name: &str) -> String {
    let path = format!("{}/docs/reference/{name}.md", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The subcommands `iscp --help` lists.
fn subcommands() -> Vec<String> {
    let out = iscp(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn every_cli_flag_is_in_the_reference() {
    let doc = page("cli");
    let commands = subcommands();
    assert!(commands.len() >= 10, "{commands:?}");
    let mut missing = Vec::new();
    for c in &commands {
        assert!(
            doc.contains(&format!("iscp {c}")),
            "docs/reference/cli.md has no `iscp {c}`"
        );
        let out = iscp(&[c, "--help"]);
        for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let flag: String = word
                .trim_start_matches(['[', '('])
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                .collect();
            if !flag.starts_with("--")
                || flag.len() < 3
                || ["--help", "--version"].contains(&flag.as_str())
            {
                continue;
            }
            if !doc.contains(&flag) {
                missing.push(format!("iscp {c} {flag}"));
            }
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "flags missing from docs/reference/cli.md: {missing:?}"
    );
}

/// The fields of the spec's serde structs, read from their source.
fn spec_fields() -> Vec<(String, String)> {
    let src = include_str!("../../sweep/src/spec/keys.rs");
    let structs = [
        "Spec",
        "TransferSpec",
        "BaselinesSpec",
        "ScanSpec",
        "DataSpec",
        "TrainSpec",
        "SettingSpec",
        "DeriveSpec",
        "CanvasSpec",
        "SearchSpec",
        "RunSpec",
        "PopulationSpec",
        "CleanseSpec",
        "MarginSpec",
        "UapScanSpec",
    ];
    let mut out = Vec::new();
    for s in structs {
        let body = src
            .split(&format!("pub struct {s} {{"))
            .nth(1)
            .unwrap_or_else(|| panic!("no struct {s} in keys.rs"))
            .split("\n}")
            .next()
            .unwrap();
        for line in body.lines() {
            if let Some(field) = line.trim().strip_prefix("pub ") {
                if let Some((name, _)) = field.split_once(':') {
                    out.push((s.to_string(), name.trim().to_string()));
                }
            }
        }
    }
    out
}

#[test]
fn every_spec_key_is_in_the_reference() {
    let doc = page("spec");
    let fields = spec_fields();
    assert!(fields.len() > 60, "{} fields", fields.len());
    let missing: Vec<String> = fields
        .iter()
        .filter(|(_, f)| {
            ![
                format!("{f}`"),
                format!("`{f}"),
                format!(" {f} = "),
                format!("{{ {f} = "),
            ]
            .iter()
            .any(|p| doc.contains(p.as_str()))
        })
        .map(|(s, f)| format!("{s}.{f}"))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/reference/spec.md: {missing:?}"
    );
}

#[test]
fn every_table_column_is_in_the_reference() {
    let doc = page("tables");
    let mut missing = Vec::new();
    for table in iscp_proto::Table::ALL {
        if !doc.contains(&format!("`{table}`")) {
            missing.push(format!("table {table}"));
        }
        for f in iscp_sweep::part_check::table_schema(table).fields() {
            if !doc.contains(&format!("`{}`", f.name())) {
                missing.push(format!("{table}.{}", f.name()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing from docs/reference/tables.md: {missing:?}"
    );
}
