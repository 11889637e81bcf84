//! The backdoor scan flags the BadNets target class and nothing on the natural model, both as
//! `iscp scan` on a model artifact and as part of a sweep.

use crate::helpers::{parts, run_ok, run_scan, stdout_ok};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use iscp_sweep::tables::{read_batches, read_model_rows};

const DATA: &str =
    "[data]\nkind = \"synthetic\"\nclasses = 5\nsize = 24\ntrain = 2000\ntest = 600\n";

/// The flagged classes of one part file, or of the rows of every part in a table folder whose
/// `model` column is `model`.
fn flagged_classes(table: &std::path::Path, model: Option<&str>) -> Vec<i64> {
    let files = if table.is_dir() {
        parts(table)
    } else {
        vec![table.to_path_buf()]
    };
    let mut out = Vec::new();
    for b in files.iter().flat_map(|f| read_batches(f).unwrap()) {
        let class = b
            .column_by_name("class")
            .unwrap()
            .as_primitive::<Int64Type>();
        let flagged = b.column_by_name("flagged").unwrap().as_boolean();
        let names = b.column_by_name("model").unwrap().as_string::<i32>();
        out.extend(
            (0..b.num_rows())
                .filter(|&i| flagged.value(i) && model.is_none_or(|m| names.value(i) == m))
                .map(|i| class.value(i)),
        );
    }
    out
}

#[test]
fn scan_flags_the_backdoor_target_only() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    let results = dir.path().join("r");
    let train = "train = { epochs = 3, batch = 64, lr = 0.05 }";
    std::fs::write(
        &spec,
        format!(
            "name = \"s\"\n{DATA}\n[[settings]]\nname = \"natural\"\nkind = \"natural\"\n{train}\n\n[[settings]]\nname = \"badnets\"\nkind = \"badnets\"\ntarget = 2\n{train}\n\n[search]\ncanvases = [{{ kind = \"positive\", n = 1 }}, {{ kind = \"white\" }}]\nalphas = [0.2]\nsizes = [0.01, 0.05]\n\n[scan]\nsize = 0.01\n"
        ),
    )
    .unwrap();
    let log = run_ok(&spec, &results);
    assert!(
        log.contains("scan badnets-alpha0p2-released-base: likely backdoored: class 2"),
        "{log}"
    );
    assert!(
        log.contains("scan natural-alpha0p2-released-base: no class stands out"),
        "{log}"
    );
    let root = results.join("s");
    // One part per setting, written by its scan unit (named by the unit's id).
    let scans = parts(&root.join("scan"));
    assert_eq!(scans.len(), 2, "{scans:?}");
    assert_eq!(
        flagged_classes(&root.join("scan"), Some("badnets-alpha0p2-released-base")),
        vec![2]
    );
    assert!(flagged_classes(&root.join("scan"), Some("natural-alpha0p2-released-base")).is_empty());

    // The same verdicts from `iscp scan` on the trained artifacts.
    let data = dir.path().join("data.toml");
    std::fs::write(&data, DATA).unwrap();
    for row in read_model_rows(&parts(&root.join("models"))[0])
        .unwrap()
        .into_iter()
        .chain(read_model_rows(&parts(&root.join("models"))[1]).unwrap())
    {
        let model = root.join(format!("artifacts/{}.iscpm", row.checkpoint_sha256));
        let text = stdout_ok(&run_scan(&model, &data, &results));
        let table = results.join(format!("scan/scan/part-{}.parquet", row.checkpoint_sha256));
        let expected = if row.setting == "badnets" {
            vec![2]
        } else {
            vec![]
        };
        assert_eq!(
            flagged_classes(&table, None),
            expected,
            "{}: {text}",
            row.setting
        );
        assert!(results
            .join(format!("scan/images/scan-{}.png", row.checkpoint_sha256))
            .exists());
    }
}
