//! Published-format datasets (D_R / D_NR as `torch.save` files): read back exactly from files a
//! Python fixture writes, in the zip and the legacy format, and trained on by a setting.

use crate::helpers::{rows, run_ok, tiny_spec, white_canvases_only};
use iscp_engine::data::{load_tensor_dataset, load_torch_tensor};

fn python() -> String {
    std::env::var("ISCP_TORCH_VENV")
        .map(|v| format!("{v}/bin/python3"))
        .unwrap_or_else(|_| "python3".into())
}

fn fixture(out: &std::path::Path, n: i64, legacy: bool) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/make_tensor_dataset.py"
    );
    let mut cmd = std::process::Command::new(python());
    cmd.arg(script)
        .arg(out)
        .args([n.to_string(), "1".into(), "16".into(), "3".into()]);
    if legacy {
        cmd.arg("--legacy");
    }
    let o = cmd.output().expect("python3 runs");
    assert!(
        o.status.success(),
        "fixture failed (run through `make test`, which sets ISCP_TORCH_VENV): {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn torch_save_files_in_both_formats_are_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for legacy in [false, true] {
        let out = dir.path().join(if legacy { "legacy" } else { "zip" });
        fixture(&out, 7, legacy);
        let ims = load_torch_tensor(&out.join("CIFAR_ims")).unwrap();
        assert_eq!(ims.size(), [7, 1, 16, 16]);
        let total = (7 * 16 * 16) as f64;
        for (n, i, j) in [(0, 0, 1), (3, 5, 9), (6, 15, 2)] {
            let want = ((n * 256 + j * 16 + i) as f64) / total;
            let got = ims.double_value(&[n, 0, i, j]);
            assert!(
                (got - want).abs() < 1e-6,
                "legacy={legacy} [{n},0,{i},{j}]: {got} vs {want}"
            );
        }
        let names = vec!["a".into(), "b".into(), "c".into()];
        let ds = load_tensor_dataset(&out, names).unwrap();
        assert_eq!(ds.labels_vec(), [0, 1, 2, 0, 1, 2, 0]);
    }
    let err = load_torch_tensor(&dir.path().join("zip"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("zip"), "{err}");
}

#[test]
fn a_setting_trains_on_an_imported_tensor_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = dir.path().join("d_r");
    fixture(&tensors, 120, true);
    let spec = dir.path().join("tiny.toml");
    // The fixture's images carry no class signal: white canvases only (positive ones need
    // correctly classified images).
    let text = white_canvases_only(&tiny_spec("", "[0.2]")).replace(
        "train = { epochs = 1, batch = 32, lr = 0.05 }",
        &format!(
            "train = {{ epochs = 1, batch = 32, lr = 0.05 }}\ntrain_tensors = \"{}\"",
            tensors.display()
        ),
    );
    std::fs::write(&spec, text).unwrap();
    let results = dir.path().join("results");
    let log = run_ok(&spec, &results);
    assert!(log.contains("0 failed"), "{log}");
    let root = results.join("tiny");
    assert_eq!(rows(&root.join("models")), 1);
    assert_eq!(rows(&root.join("searches")), 3);
    // A missing file is refused before any work, naming the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("d_r", "nowhere"),
    )
    .unwrap();
    let out = crate::helpers::iscp(&["run", bad.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`settings[0].train_tensors`") && err.contains("no `CIFAR_ims`"),
        "{err}"
    );
}
