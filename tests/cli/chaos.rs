//! Chaos: a sweep of 206 units on three worker processes while a random worker is SIGKILLed
//! every few seconds (and started again) and the coordinator is SIGKILLed twice (and restarted on
//! its state folder). Every planned unit lands exactly once in every table, the `failures` table
//! accounts for every attempt a kill cost, and the masks select what an uninterrupted run selects.

use crate::cluster::{assert_exactly_once, done_of, unit_ids, Cluster, Proc};
use crate::helpers::{iscp, parts, tiny_spec};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// 3 classes × 3 canvases × 17 alphas = 153 searches, 51 evaluations, a model, its pictures.
fn spec(name: &str) -> String {
    let alphas: Vec<String> = (1..=17)
        .map(|i| format!("{:.2}", 0.05 * i as f64))
        .collect();
    // Searches long enough (1,800 test images, 5 epochs) that kills land in the middle of them.
    tiny_spec("", &format!("[{}]", alphas.join(", ")))
        .replace("name = \"tiny\"", &format!("name = \"{name}\""))
        .replace("test = 240", "test = 1800")
        .replace("epochs = 1\nsizes", "epochs = 5\nsizes")
}

fn masks(root: &std::path::Path) -> BTreeMap<String, (Vec<f32>, i64)> {
    let mut out = BTreeMap::new();
    for p in parts(&root.join("searches")) {
        for r in iscp_sweep::tables::read_search_rows(&p).unwrap() {
            out.insert(r.unit_id, (r.mask, r.attempt));
        }
    }
    out
}

#[test]
fn killed_workers_and_a_twice_killed_coordinator_lose_and_double_nothing() {
    // The uninterrupted run of the same spec, in-process.
    let reference = tempfile::tempdir().unwrap();
    let ref_spec = reference.path().join("chaos.toml");
    std::fs::write(&ref_spec, spec("chaos")).unwrap();
    // One libtorch thread, as the workers below: the model trains to the same weights.
    let out = iscp(&[
        "run",
        ref_spec.to_str().unwrap(),
        "--results",
        reference.path().join("r").to_str().unwrap(),
        "--quiet",
        "--threads",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = masks(&reference.path().join("r/chaos"));
    assert_eq!(expected.len(), 153);

    let mut c = Cluster::new();
    let coord_args = ["--lease-ttl-s", "2"];
    let mut coord = c.coordinator(&coord_args);
    let worker_args = ["--max-units", "6"];
    let mut generation = 0;
    let mut workers: Vec<Proc> = (0..3)
        .map(|i| c.worker(&format!("w{i}-0"), &worker_args))
        .collect();
    let out = c.submit("chaos", &spec("chaos"));
    assert!(out.contains("206 units"), "{out}");
    let started = Instant::now();
    let mut rng = 0x9e3779b97f4a7c15u64;
    let (mut worker_kills, mut coordinator_kills) = (0, 0);
    let mut next_kill = Duration::from_millis(1200);
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let t = started.elapsed();
        let status = c.status();
        if status.contains("(finished)") {
            break;
        }
        assert!(
            t < Duration::from_secs(170),
            "the sweep did not finish:\n{}",
            c.status()
        );
        // Kills for the first 30 s; then the sweep runs to its end.
        if t < Duration::from_secs(30) && t >= next_kill {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = ((rng >> 33) % 3) as usize;
            workers[i].kill9();
            generation += 1;
            workers[i] = c.worker(&format!("w{i}-{generation}"), &worker_args);
            worker_kills += 1;
            next_kill = t + Duration::from_millis(1200 + (rng >> 40) % 1200);
        }
        // The coordinator dies twice, by progress (so on any machine before the end): once a
        // fifth of the searches is done, and again past half of them.
        let due = [30, 80];
        if coordinator_kills < due.len() && done_of(&status, "search") >= due[coordinator_kills] {
            coord.kill9();
            std::thread::sleep(Duration::from_millis(500));
            coord = c.coordinator(&coord_args);
            coordinator_kills += 1;
        }
    }
    assert!(
        worker_kills >= 3 && coordinator_kills == 2,
        "the sweep ended before the chaos: {worker_kills} worker and {coordinator_kills} coordinator kills"
    );
    let status = c.status();
    assert!(
        !status.lines().any(|l| l.starts_with("  failed ")),
        "{status}"
    );
    let root = c.results("chaos");
    assert_exactly_once(&root, "models", 1);
    assert_exactly_once(&root, "searches", 153);
    assert_exactly_once(&root, "patterns", 51);

    // Every attempt a unit used beyond its first is a row in `failures` (an expired lease of a
    // killed worker), and no failure row is of a unit that never needed one.
    let mut failed: BTreeMap<String, i64> = BTreeMap::new();
    for u in unit_ids(&root.join("failures")) {
        *failed.entry(u).or_default() += 1;
    }
    let got = masks(&root);
    let mut retried = 0;
    for (id, (_, attempt)) in &got {
        let failures = failed.get(id).copied().unwrap_or(0);
        assert_eq!(
            *attempt,
            1 + failures,
            "search {id}: attempt {attempt}, {failures} failure rows"
        );
        retried += (failures > 0) as usize;
    }
    assert!(retried > 0, "no kill hit a search: the test did not test");
    eprintln!(
        "chaos: {worker_kills} worker kills, {coordinator_kills} coordinator kills, {} failure rows, \
         {retried} searches retried, {:.1} s",
        failed.values().sum::<i64>(),
        started.elapsed().as_secs_f64()
    );

    // The same pixels as the uninterrupted run.
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, (m, _)) in &got {
        let k = iscp_engine::pattern::pattern_k(0.02, m.len());
        iscp_engine::agreement::same_selection(m, &expected[id].0, k, 0.05)
            .unwrap_or_else(|e| panic!("search {id} differs from the uninterrupted run: {e}"));
    }
}
