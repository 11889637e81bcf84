//! A full disk: `iscp run` on a small tmpfs that fills up ends with exit 1, the path and "out of
//! space" instead of hanging, leaves no half-written part, and after space is freed a rerun
//! finishes the sweep with every row exactly once. Needs root (to mount the tmpfs); elsewhere it
//! says so and checks nothing.

use crate::helpers::{rows, run, run_ok, spec_in_temp, stderr_of_exit, tiny_spec};
use std::process::Command;

/// A tmpfs of `kib` KiB mounted on a new folder, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(kib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_run_whose_disk_fills_ends_with_the_reason_and_resumes_once_freed() {
    let Some(fs) = Tmpfs::mount(3072) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    // The spec's folder is not the one that fills (its own `results` goes unused).
    let (_spec_dir, spec, _) = spec_in_temp("tiny.toml", &tiny_spec("", "[0.2]"));
    let results = fs.0.path().join("results");
    // Leave about 250 KiB: the ledger starts, the model's artifact does not fit.
    let filler = fs.0.path().join("filler");
    std::fs::write(&filler, vec![0u8; (3072 - 250) << 10]).unwrap();
    let started = std::time::Instant::now();
    let err = stderr_of_exit(&run(&spec, &results), 1);
    assert!(
        err.contains("out of space") && err.contains("results/tiny"),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs() < 120,
        "took {:?}",
        started.elapsed()
    );
    let tmp: Vec<_> = walk(&results)
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "half-written files left: {tmp:?}");
    std::fs::remove_file(&filler).unwrap();
    run_ok(&spec, &results);
    let root = results.join("tiny");
    // 3 classes × (2 positive + white) canvases × 1 alpha.
    assert_eq!(rows(&root.join("searches")), 9);
    assert_eq!(rows(&root.join("models")), 1);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}
