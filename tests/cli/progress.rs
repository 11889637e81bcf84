//! Progress as a person reads it: without a terminal, one line per finished stage naming the
//! setting and the stage, with an ETA that is not zero while work remains; in a pseudo-terminal,
//! bars with the same words, the worker's slot and a non-zero ETA.

use crate::helpers::{run_with, spec_in_temp, tiny_spec};
use std::path::Path;

/// Two settings, each trained for 4 epochs, searches of 3: stages long enough (about 3 s in all
/// on a 2-core Xeon) that the later ones are measured (an ETA needs half a second of measured
/// work) even on a machine several times faster.
fn spec() -> String {
    tiny_spec("", "[0.2]")
        .replace(
            "train = { epochs = 1, batch = 32, lr = 0.05 }",
            "train = { epochs = 4, batch = 32, lr = 0.05 }\n\n[[settings]]\nname = \"badnets\"\n\
             kind = \"badnets\"\ntarget = 0\ntrain = { epochs = 4, batch = 32, lr = 0.05 }",
        )
        .replace("epochs = 1\nsizes", "epochs = 3\nsizes")
}

/// The `X/Y units` and `ETA …` of a stage line.
fn standing(line: &str) -> Option<(u64, u64, String)> {
    let (_, rest) = line.rsplit_once(" · ")?;
    let (units, rest) = rest.split_once(" units, ")?;
    let (done, total) = units.split_once('/')?;
    let eta = rest.split("ETA ").nth(1)?.to_string();
    let n = |s: &str| s.replace(',', "").parse::<u64>().ok();
    Some((n(done)?, n(total)?, eta))
}

fn check_stage_lines(log: &str) {
    let stages: Vec<&str> = log.lines().filter(|l| l.starts_with('[')).collect();
    for want in [
        "natural: training, 4 epochs in",
        "badnets: training, 4 epochs in",
        "natural: 9 searches (classes 0–2, positive/white) in",
        "evaluating badnets classes 0–2 (3 units) in",
        "natural: drawing pictures in",
    ] {
        assert!(
            stages.iter().any(|l| l.contains(want)),
            "no stage line with `{want}`:\n{log}"
        );
    }
    let mut measured = 0;
    for l in &stages {
        let (done, total, eta) = standing(l).unwrap_or_else(|| panic!("no standing in `{l}`"));
        if done < total {
            assert_ne!(eta, "0s", "an ETA of zero while work remains: `{l}`\n{log}");
            measured += usize::from(eta != "estimating");
        } else {
            assert_eq!(eta, "0s", "{l}");
        }
    }
    assert!(measured >= 1, "no measured ETA:\n{log}");
}

#[test]
fn without_a_terminal_each_finished_stage_is_a_line_with_its_words_and_an_eta() {
    let (_dir, spec_path, results) = spec_in_temp("tiny.toml", &spec());
    // stderr is a pipe here: no bars even without --quiet.
    let out = run_with(&spec_path, &results, &["--threads", "2"]);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "terminal escapes without a terminal:\n{log}"
    );
    check_stage_lines(&log);
}

/// Runs `command` in a pseudo-terminal of 120 columns (util-linux `script`), returning what the
/// terminal received.
fn in_pty(command: &str, log: &Path) -> String {
    let status = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("stty cols 120 rows 40; {command}"))
        .arg(log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("`script` (util-linux, on every Debian) runs: the pseudo-terminal test needs it");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "{command} failed in a pty:\n{text}");
    text
}

#[test]
fn in_a_terminal_bars_name_the_work_the_slot_and_a_nonzero_eta() {
    let (dir, spec_path, results) = spec_in_temp("tiny.toml", &spec());
    let text = in_pty(
        &format!(
            "{} run {} --results {} --threads 2",
            env!("CARGO_BIN_EXE_iscp"),
            spec_path.display(),
            results.display()
        ),
        &dir.path().join("pty.log"),
    );
    // The terminal's text without its escapes and carriage returns.
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else if c != '\r' {
            plain.push(c);
        }
    }
    for want in [
        "% of the work",
        "units, ETA",
        "local@",
        " cpu [",
        "natural: training",
        "searches (classes",
        "evaluating badnets",
        "natural: training, 4 epochs in",
    ] {
        assert!(
            plain.contains(want),
            "no `{want}` on the terminal:\n{plain}"
        );
    }
    // At least one ETA was measured and was not zero while units were left.
    let etas: Vec<&str> = plain
        .split("units, ETA ")
        .skip(1)
        .filter_map(|rest| rest.split(',').next())
        .filter(|eta| *eta != "estimating" && *eta != "0s")
        .collect();
    assert!(
        !etas.is_empty(),
        "no measured ETA on the terminal:\n{plain}"
    );
}
