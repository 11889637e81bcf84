//! A run killed in the middle of training resumes from its last epoch checkpoint, and the
//! `training` table ends with every epoch exactly once.

use crate::helpers::{rows, run_ok};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use iscp_sweep::tables::read_batches;
use std::time::{Duration, Instant};

const SPEC: &str = r#"name = "ckpt"
[data]
kind = "synthetic"
classes = 4
size = 32
train = 3000
test = 200

[[settings]]
name = "natural"
kind = "natural"
train = { epochs = 8, batch = 64, lr = 0.05 }

[search]
classes = [0]
canvases = [{ kind = "white" }]
alphas = [0.2]
epochs = 1
sizes = [0.05]
"#;

fn checkpoint_epochs(root: &std::path::Path) -> Vec<usize> {
    let dir = root.join("artifacts/checkpoints");
    let Ok(sweeps) = std::fs::read_dir(dir) else {
        return vec![];
    };
    // checkpoints/<sweep>/<unit>/epoch-<n>.json
    sweeps
        .flatten()
        .flat_map(|s| std::fs::read_dir(s.path()).into_iter().flatten().flatten())
        .flat_map(|u| std::fs::read_dir(u.path()).into_iter().flatten().flatten())
        .filter_map(|f| {
            f.file_name()
                .to_str()?
                .strip_prefix("epoch-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn training_killed_mid_way_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("ckpt.toml");
    let results = dir.path().join("results");
    std::fs::write(&spec, SPEC).unwrap();
    let root = results.join("ckpt");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args([
            "run",
            spec.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--quiet",
            "--threads",
            "2",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !checkpoint_epochs(&root).iter().any(|&e| e >= 1) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 epochs"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let reached = *checkpoint_epochs(&root).iter().max().unwrap();
    assert!(reached < 7, "training finished before the kill");
    assert!(
        !root.join("models").exists(),
        "the unit must not count as done"
    );

    let log = run_ok(&spec, &results);
    let resumed = format!(
        "resumed training from its checkpoint after epoch {}",
        reached + 1
    );
    assert!(log.contains(&resumed), "expected `{resumed}` in:\n{log}");
    assert_eq!(rows(&root.join("models")), 1);
    let batch = &read_batches(
        &std::fs::read_dir(root.join("training"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap()[0];
    let epochs: Vec<i64> = batch
        .column_by_name("epoch")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(
        epochs,
        (0..8).collect::<Vec<i64>>(),
        "every epoch exactly once"
    );
    assert!(
        checkpoint_epochs(&root).is_empty(),
        "checkpoints are removed once the model is stored"
    );
}
