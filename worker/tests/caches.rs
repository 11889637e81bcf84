//! A worker's caches are keyed by what they hold: one executor alternating between two sweeps
//! whose synthetic datasets have the same shape (and different seeds) produces the rows each sweep
//! produces alone, never one sweep's units on the other's images.
//! (One test in its own binary: search lanes change libtorch's process-wide thread count.)

mod common;

use iscp_engine::agreement::same_selection;
use iscp_engine::pattern::pattern_k;
use iscp_proto::v1::LeasedUnit;
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::tables::{search_rows_from_bytes, SearchRow};
use iscp_sweep::units::{plan, Unit};
use iscp_worker::executor::{Executor, Output};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Device;

/// A sweep as the worker sees it: its spec and units, leased one kind at a time.
struct Sweep {
    name: String,
    toml: String,
    prepare: Unit,
    searches: Vec<Unit>,
}

impl Sweep {
    fn new(name: &str, seed: u64) -> Sweep {
        let canvases = "[{ kind = \"positive\", n = 1 }, { kind = \"white\" }]";
        let toml = common::spec(name, seed, 300, 120, canvases);
        let loaded = LoadedSpec::parse_for_plan(&toml, &format!("{name}.toml")).unwrap();
        let mut plans = plan(&loaded, 3, 300);
        let p = plans.remove(0);
        Sweep {
            name: name.into(),
            toml,
            prepare: p.prepare,
            searches: p.searches,
        }
    }

    fn spec_sha(&self) -> String {
        hex::encode(Sha256::digest(self.toml.as_bytes()))
    }

    fn lease(&self, u: &Unit, model_sha: &str) -> LeasedUnit {
        LeasedUnit {
            sweep: self.name.clone(),
            unit_id: u.id.clone(),
            kind: u.kind.into(),
            lease_id: "l".into(),
            attempt: 1,
            spec_sha256: self.spec_sha(),
            spec_file: format!("{}.toml", self.name),
            model_sha256: model_sha.into(),
            params_json: u.params_json(),
            ..Default::default()
        }
    }

    /// Runs the prepare unit; returns the model's hash.
    fn prepare(&self, ex: &mut Executor) -> String {
        let out = ex.run(&[self.lease(&self.prepare, "")]).remove(0);
        let out: Output = out.unwrap_or_else(|f| panic!("{}: prepare: {}", self.name, f.error));
        out.artifact.expect("a trained model").0
    }

    /// Runs every search as one lease; returns the rows by unit id.
    fn searches(&self, ex: &mut Executor, model: &str) -> BTreeMap<String, SearchRow> {
        let leased: Vec<LeasedUnit> = self.searches.iter().map(|u| self.lease(u, model)).collect();
        let mut rows = BTreeMap::new();
        for (u, out) in leased.iter().zip(ex.run(&leased)) {
            let out = out.unwrap_or_else(|f| panic!("{}: search: {}", self.name, f.error));
            let row = search_rows_from_bytes(&out.parts[0].1, &u.unit_id)
                .unwrap()
                .remove(0);
            rows.insert(u.unit_id.clone(), row);
        }
        rows
    }
}

/// An executor that knows the sweeps' specs (a lease names its spec by hash).
fn executor(cache: &Path, sweeps: &[&Sweep]) -> Executor {
    std::fs::create_dir_all(cache).unwrap();
    let mut ex = Executor::new(Device::Cpu, "cpu", "test", cache.to_path_buf());
    ex.threads_fixed = true;
    let specs: Vec<(String, String, String)> = sweeps
        .iter()
        .map(|s| (s.spec_sha(), s.toml.clone(), format!("{}.toml", s.name)))
        .collect();
    let specs: Vec<(&str, &str, &str)> = specs
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    ex.specs = Some(iscp_worker::specs::known(&specs));
    ex
}

fn assert_same_rows(
    sweep: &str,
    alone: &BTreeMap<String, SearchRow>,
    mixed: &BTreeMap<String, SearchRow>,
) {
    assert_eq!(
        alone.keys().collect::<Vec<_>>(),
        mixed.keys().collect::<Vec<_>>()
    );
    for (id, a) in alone {
        let m = &mixed[id];
        // What the data decides: the canvas chosen from the test set, the class, the shape.
        assert_eq!(
            (
                a.class,
                &a.canvas_kind,
                a.canvas_rank,
                a.canvas_index,
                a.height,
                a.width
            ),
            (
                m.class,
                &m.canvas_kind,
                m.canvas_rank,
                m.canvas_index,
                m.height,
                m.width
            ),
            "{sweep} {id}: another canvas"
        );
        // The search itself: the same pixels selected (floats are compared by what matters).
        for size in [0.01, 0.05, 0.1] {
            let k = pattern_k(size, a.mask.len());
            if let Err(e) = same_selection(&a.mask, &m.mask, k, 0.05) {
                panic!(
                    "{sweep} {id}: at size {size} the mask differs from the sweep run alone: {e}"
                );
            }
        }
        assert!(
            (a.final_loss - m.final_loss).abs() <= 0.02 * a.final_loss.abs().max(1.0),
            "{sweep} {id}: final loss {} alone, {} interleaved",
            a.final_loss,
            m.final_loss
        );
    }
}

#[test]
fn a_worker_alternating_between_two_sweeps_produces_the_rows_each_produces_alone() {
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (Sweep::new("sweep-a", 1), Sweep::new("sweep-b", 2));
    // Same grid shape, different data: the unit ids differ only through the seed.
    assert_eq!(a.searches.len(), b.searches.len());

    let alone_a = {
        let mut ex = executor(&dir.path().join("alone-a"), &[&a]);
        let m = a.prepare(&mut ex);
        a.searches(&mut ex, &m)
    };
    let alone_b = {
        let mut ex = executor(&dir.path().join("alone-b"), &[&b]);
        let m = b.prepare(&mut ex);
        b.searches(&mut ex, &m)
    };

    // One worker: A's model, then B's (B's data now loaded last), then A's searches, B's, A's.
    let mut ex = executor(&dir.path().join("shared"), &[&a, &b]);
    let ma = a.prepare(&mut ex);
    let mb = b.prepare(&mut ex);
    // (Model hashes are not compared: a saved VarStore's bytes follow its map's order.)
    let mixed_a = a.searches(&mut ex, &ma);
    let mixed_b = b.searches(&mut ex, &mb);
    let again_a = a.searches(&mut ex, &ma);
    assert_same_rows("sweep-a", &alone_a, &mixed_a);
    assert_same_rows("sweep-b", &alone_b, &mixed_b);
    assert_same_rows("sweep-a (again)", &alone_a, &again_a);
}
