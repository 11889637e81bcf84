//! A run killed in the middle of training resumes from its last epoch checkpoint, the `training`
//! table ends with every epoch exactly once, and the resumed training is the training: the same
//! weights, masks and predictive power as an uninterrupted run on this machine.

use crate::helpers::{
    natural_setting, rows, run_ok, run_words, spec_in_temp, synthetic_data, WHITE_SEARCH,
};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use iscp_engine::model::load_artifact;
use iscp_sweep::tables::{read_batches, read_model_rows, read_pattern_rows, read_search_rows};
use std::time::{Duration, Instant};

/// 8 epochs of training on 3000 images of 4 classes (32×32), then one search of class 0.
fn ckpt_spec() -> String {
    let data = synthetic_data(4, 32, 3000, 200);
    let setting = natural_setting("{ epochs = 8, batch = 64, lr = 0.05 }");
    format!("name = \"ckpt\"\n{data}\n{setting}\n{WHITE_SEARCH}")
}

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
    let (dir, spec, results) = spec_in_temp("ckpt.toml", &ckpt_spec());
    let root = results.join("ckpt");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_iscp"))
        .args(run_words(&spec, &results))
        .args(["--quiet", "--threads", "2"])
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

    // The same spec, never interrupted.
    let uninterrupted = dir.path().join("uninterrupted");
    run_ok(&spec, &uninterrupted);
    let other = uninterrupted.join("ckpt");
    let model = |root: &std::path::Path| {
        let rows = read_model_rows(&only_part(&root.join("models"))).unwrap();
        let path = root.join(format!("artifacts/{}.iscpm", rows[0].checkpoint_sha256));
        load_artifact(&path, tch::Device::Cpu).unwrap()
    };
    let (a, b) = (model(&root), model(&other));
    let (va, vb) = (
        a.var_store().unwrap().variables(),
        b.var_store().unwrap().variables(),
    );
    assert_eq!(va.len(), vb.len());
    for (name, t) in &va {
        let d = (t - &vb[name]).abs().max().double_value(&[]);
        assert!(d <= 1e-6, "weight {name} differs by {d} after resuming");
    }
    let search =
        |root: &std::path::Path| read_search_rows(&only_part(&root.join("searches"))).unwrap();
    let (sa, sb) = (search(&root), search(&other));
    let md = sa[0]
        .mask
        .iter()
        .zip(&sb[0].mask)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(md <= 1e-4, "masks differ by {md}");
    let pw = |root: &std::path::Path| {
        read_pattern_rows(&only_part(&root.join("patterns")))
            .unwrap()
            .into_iter()
            .filter(|r| r.is_best)
            .map(|r| r.pw.unwrap())
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (pw(&root), pw(&other));
    assert_eq!(pa.len(), pb.len());
    for (x, y) in pa.iter().zip(&pb) {
        assert!((x - y).abs() <= 1e-6, "PW {x} resumed, {y} uninterrupted");
    }
}

fn only_part(table: &std::path::Path) -> std::path::PathBuf {
    let mut parts: Vec<_> = std::fs::read_dir(table)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parts.len(), 1, "one part in {}", table.display());
    parts.remove(0)
}
