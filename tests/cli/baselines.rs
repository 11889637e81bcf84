//! Baselines and transfer from a spec: UAP rows stay in their ε ball, Grad-CAM rows have one best
//! canvas, and every best pattern of one model is evaluated on the other.

use crate::helpers::{rows, run_ok, spec_in_temp, tiny_spec};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::Array;
use iscp_sweep::tables::read_batches;

#[test]
fn baselines_and_transfer_fill_their_tables() {
    let second = "[[settings]]\nname = \"natural2\"\nkind = \"natural\"\nseed = 7\ntrain = { epochs = 1, batch = 32, lr = 0.05 }\n\n[search]";
    let text = tiny_spec("", "[0.2]").replace("[search]", second)
        + "\n[baselines]\nuap_eps = [8, 32]\ngradcam = true\n\n[[transfer]]\nfrom = \"natural\"\nto = \"natural2\"\n";
    let (_dir, spec, results) = spec_in_temp("tiny.toml", &text);
    let log = run_ok(&spec, &results);
    assert!(
        log.contains("transfer natural → natural2: 6 patterns"),
        "{log}"
    );
    let root = results.join("tiny");
    // Per setting: 3 classes × (2 UAPs + Grad-CAM on 3 canvases).
    assert_eq!(rows(&root.join("baselines")), 2 * 3 * (2 + 3));
    for part in std::fs::read_dir(root.join("baselines")).unwrap() {
        for b in read_batches(&part.unwrap().path()).unwrap() {
            let method = b.column_by_name("method").unwrap().as_string::<i32>();
            let eps = b
                .column_by_name("epsilon")
                .unwrap()
                .as_primitive::<Float64Type>();
            let best = b.column_by_name("is_best").unwrap().as_boolean();
            let pattern = b.column_by_name("pattern").unwrap().as_list::<i32>();
            if method.value(0) == "uap" {
                let delta = pattern.value(0);
                let delta = delta.as_primitive::<arrow_array::types::Float32Type>();
                let max = delta.values().iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                assert!(
                    max <= eps.value(0) + 1e-6,
                    "‖δ‖∞ {max} > ε {}",
                    eps.value(0)
                );
            } else {
                assert!(eps.is_null(0));
                assert_eq!((0..b.num_rows()).filter(|&i| best.value(i)).count(), 1);
            }
        }
    }
    // One transfer unit, one part (named by the unit's id).
    let transfers = crate::helpers::parts(&root.join("transfer"));
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    let t = &read_batches(&transfers[0]).unwrap()[0];
    assert_eq!(t.num_rows(), 6);
    let pw_to = t
        .column_by_name("pw_to")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert!(pw_to.values().iter().all(|v| (0.0..=5.0).contains(v)));
}
