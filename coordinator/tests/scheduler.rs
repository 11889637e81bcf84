//! The scheduler's index (ready units, dependency counters, counts per kind and state) stays
//! equal to one rebuilt from scratch through any sequence of leases, completions, failures,
//! hand-backs, retries and cancels; leases take turns across sweeps; a held model is preferred.

mod common;

use common::*;
use iscp_coordinator::scheduler::{Leased, Scheduler, UnitKey};
use iscp_proto::v1::FailureReason;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// prepare `p`; 8 searches on it; 4 evaluations of 2 searches each; pictures reading them all.
fn plan() -> Vec<iscp_coordinator::scheduler::NewUnit> {
    let mut units = vec![unit("p", "prepare-model", "", &[])];
    for i in 0..8 {
        units.push(unit(&format!("s{i}"), "search", "p", &["p"]));
    }
    let mut all: Vec<String> = Vec::new();
    for i in 0..4 {
        let (a, b) = (format!("s{}", 2 * i), format!("s{}", 2 * i + 1));
        units.push(unit(&format!("e{i}"), "evaluate", "p", &[&a, &b]));
        all.extend([format!("e{i}"), a, b]);
    }
    let refs: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    units.push(unit("pic", "pictures", "", &refs));
    units
}

/// A tiny deterministic generator (no dependency, same sequence everywhere).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn complete(core: &mut Scheduler, l: &Leased, worker: &str) {
    let key = key_of(l);
    let c = claim_of(worker, l);
    let (parts, model) = match l.kind.name() {
        "prepare-model" => (vec![("models".into(), models_part(&l.unit_id))], MODEL),
        "search" => (
            vec![("searches".into(), part("searches", &l.unit_id, ""))],
            None,
        ),
        "evaluate" => {
            let first = format!("s{}", 2 * l.unit_id[1..].parse::<usize>().unwrap());
            let p = part("patterns", &l.unit_id, &first);
            (vec![("patterns".into(), p)], None)
        }
        _ => (vec![], None),
    };
    core.complete(&key, c, parts, model).unwrap();
}

#[test]
fn random_operations_keep_the_index_equal_to_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open(dir.path());
    for sweep in ["s", "t"] {
        submit(&mut core, sweep, plan());
    }
    core.check_index().unwrap();
    let workers = ["w0", "w1", "w2"];
    for w in workers {
        core.register(w, w, now());
    }
    let held: HashSet<String> = [MODEL.unwrap().to_string()].into();
    let none = HashSet::new();
    let mut rng = Lcg(7);
    let (mut retried, mut cancelled) = (false, false);
    for step in 0..3000 {
        let w = workers[rng.next(3) as usize];
        let hold = if rng.next(2) == 0 { &held } else { &none };
        let leased = core
            .lease(w, 1 + rng.next(4) as usize, hold, now())
            .unwrap();
        core.check_index().unwrap();
        if leased.is_empty() {
            core.finish_complete().unwrap();
            if core.status("").iter().all(|s| s.finished) {
                break;
            }
            // Units in backoff (1 ms, doubling) become ready again.
            advance(Duration::from_millis(2));
        }
        for l in &leased {
            let key = key_of(l);
            let c = claim_of(w, l);
            match rng.next(20) {
                0..=13 => complete(&mut core, l, w),
                14..=16 => core
                    .fail(&key, c, "flaky", FailureReason::Internal, false, now())
                    .unwrap(),
                17 => core
                    .fail(
                        &key,
                        c,
                        "bad input",
                        FailureReason::InvalidInput,
                        false,
                        now(),
                    )
                    .unwrap(),
                _ => core
                    .fail(&key, c, "stopping", FailureReason::Transport, true, now())
                    .unwrap(),
            }
            core.check_index().unwrap();
        }
        if step == 40 && !cancelled {
            core.cancel("t").unwrap();
            core.check_index().unwrap();
            cancelled = true;
        }
        if step == 120 && !retried {
            core.retry_failed("s").unwrap();
            core.check_index().unwrap();
            retried = true;
        }
    }
    core.finish_complete().unwrap();
    core.check_index().unwrap();
    for st in core.status("") {
        assert!(st.finished, "{}: {:?}", st.sweep, st.kinds);
        let total: u64 = st
            .kinds
            .iter()
            .map(|k| k.pending + k.leased + k.done + k.failed + k.cancelled)
            .sum();
        assert_eq!(total, plan().len() as u64, "{}", st.sweep);
        assert!(st.kinds.iter().all(|k| k.pending + k.leased == 0));
    }
}

#[test]
fn leases_take_turns_across_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open(dir.path());
    for sweep in ["a", "b", "c"] {
        let units = (0..40)
            .map(|i| unit(&format!("n{i}"), "noop", "", &[]))
            .collect();
        submit(&mut core, sweep, units);
    }
    core.register("w", "w", now());
    let none = HashSet::new();
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        let l = core.lease("w", 4, &none, now()).unwrap();
        assert_eq!(l.len(), 4, "noop units share a lease");
        assert!(
            l.iter().all(|u| u.sweep == l[0].sweep),
            "one sweep per lease"
        );
        *served.entry(l[0].sweep.clone()).or_default() += 1;
        for u in &l {
            complete(&mut core, u, "w");
        }
    }
    let turns: Vec<usize> = served.values().copied().collect();
    assert_eq!(turns, vec![10, 10, 10], "{served:?}");
    core.check_index().unwrap();
}

#[test]
fn a_worker_holding_a_model_gets_its_units_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open(dir.path());
    let other = "cd".repeat(32);
    for (sweep, sha) in [("a", other.as_str()), ("b", MODEL.unwrap())] {
        let mut units = vec![unit("p", "prepare-model", "", &[])];
        units.extend((0..3).map(|i| unit(&format!("s{i}"), "search", "p", &["p"])));
        submit(&mut core, sweep, units);
        core.register("w", "w", now());
        let l = lease_one(&mut core, "w");
        assert_eq!((l.sweep.as_str(), l.unit_id.as_str()), (sweep, "p"));
        let key = UnitKey::new(sweep, "p");
        core.complete(
            &key,
            claim_of("w", &l),
            vec![("models".into(), models_part_of("p", sha))],
            Some(sha),
        )
        .unwrap();
    }
    // Sweep `a` comes first in turn, but the worker holds `b`'s model.
    let held: HashSet<String> = [MODEL.unwrap().to_string()].into();
    let l = core.lease("w", 8, &held, now()).unwrap();
    assert_eq!(l.len(), 3);
    assert!(l
        .iter()
        .all(|u| u.sweep == "b" && u.kind.name() == "search"));
    assert_eq!(l[0].model_sha, MODEL.unwrap());
}

/// A lease the worker never received (the coordinator died between committing it and answering)
/// is not kept alive by the worker's heartbeats for the units it does hold: it expires.
#[test]
fn heartbeats_extend_only_the_leases_they_report() {
    use iscp_coordinator::scheduler::Beat;
    let dir = tempfile::tempdir().unwrap();
    let mut core = open(dir.path());
    let units = (0..2)
        .map(|i| unit(&format!("n{i}"), "noop", "", &[]))
        .collect();
    submit(&mut core, "s", units);
    core.register("w", "w", now());
    let l = core.lease("w", 2, &HashSet::new(), now()).unwrap();
    assert_eq!(l.len(), 2);
    let (held, lost) = (&l[0], &l[1]);
    let beat = Beat {
        key: UnitKey::new("s", held.unit_id.as_str()),
        attempt: held.attempt,
        step: 1,
        total: 2,
        checkpoint: None,
    };
    // Beats for 3 TTLs (100 ms) that name only the first unit.
    for _ in 0..15 {
        advance(Duration::from_millis(20));
        let cancel = core
            .heartbeat("w", std::slice::from_ref(&beat), now())
            .unwrap()
            .unwrap();
        assert!(cancel.is_empty());
        core.expire(now()).unwrap();
    }
    let st = core.status("s").remove(0);
    let noop = st.kinds.iter().find(|k| k.kind == "noop").unwrap();
    assert_eq!((noop.pending, noop.leased), (1, 1), "{:?}", st.kinds);
    // The lost unit went back to the queue and is leased again; the held one stayed leased.
    let again = core.lease("w", 2, &HashSet::new(), now()).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].unit_id, lost.unit_id);
    assert_eq!(again[0].attempt, lost.attempt + 1);
    core.check_index().unwrap();
}
