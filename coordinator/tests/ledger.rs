//! The scheduler and its ledger without the network: fencing, retries and their limit, hand-back,
//! dependency failures, and the reconciliation of ledger and part files after a crash.

mod common;

use common::{
    advance, claim, claim_of, complete_model, fail_lease, key, key_of, lease_one, models_part,
    models_part_of, now, open, open_with, submit, unit, MODEL,
};
use iscp_coordinator::scheduler::{Beat, Scheduler, UnitKey};
use iscp_proto::v1::FailureReason;
use iscp_sweep::tables::part_path;
use std::collections::HashSet;
use std::time::Duration;

fn beat(sweep: &str, id: &str, attempt: u64) -> Beat {
    Beat {
        key: UnitKey::new(sweep, id),
        attempt,
        step: 1,
        total: 10,
        checkpoint: None,
    }
}

fn state_of(core: &Scheduler, kind: &str) -> (u64, u64, u64, u64) {
    let st = core.status("s");
    let k = st[0]
        .kinds
        .iter()
        .find(|k| k.kind == kind)
        .cloned()
        .unwrap_or_default();
    (k.pending, k.leased, k.done, k.failed)
}

#[test]
fn stale_and_foreign_completions_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open_with(dir.path(), vec![unit("p", "prepare-model", "", &[])]);
    core.register("a", "a", now());
    core.register("b", "b", now());
    let la = lease_one(&mut core, "a");
    assert_eq!(la.attempt, 1);
    advance(Duration::from_millis(150));
    assert_eq!(core.expire(now()).unwrap(), 1);
    advance(Duration::from_millis(5));
    let lb = lease_one(&mut core, "b");
    assert_eq!(lb.attempt, 2);
    let parts = || vec![("models".to_string(), models_part("p"))];
    let stale = core.complete(&key("p"), claim("a", &la.lease_id, 1), parts(), MODEL);
    assert!(stale.unwrap_err().to_string().contains("stale lease"));
    let foreign = core.complete(&key("p"), claim("a", &lb.lease_id, 2), parts(), MODEL);
    assert!(foreign.unwrap_err().to_string().contains("stale lease"));
    let table = dir.path().join("results/s/models");
    assert!(
        !part_path(&table, "p").exists(),
        "a refused completion wrote a part"
    );
    core.complete(&key("p"), claim("b", &lb.lease_id, 2), parts(), MODEL)
        .unwrap();
    assert!(part_path(&table, "p").exists());
    // A second completion of a done unit is refused too.
    assert!(core
        .complete(&key("p"), claim("b", &lb.lease_id, 2), parts(), MODEL)
        .is_err());
}

#[test]
fn failures_retry_up_to_the_limit_hand_backs_do_not_count_and_dependents_fail() {
    let dir = tempfile::tempdir().unwrap();
    let units = vec![
        unit("p", "prepare-model", "", &[]),
        unit("s1", "search", "p", &["p"]),
        unit("e", "evaluate", "p", &["s1"]),
    ];
    let mut core = open_with(dir.path(), units);
    core.register("w", "w", now());
    let l = core.lease("w", 4, &HashSet::new(), now()).unwrap();
    assert_eq!(l.len(), 1, "only the prepare unit is ready");
    core.fail(
        &key("p"),
        claim_of("w", &l[0]),
        "stopping",
        FailureReason::Transport,
        true,
        now(),
    )
    .unwrap();
    assert_eq!(state_of(&core, "prepare-model"), (1, 0, 0, 0));
    for attempt in 2..=3 {
        advance(Duration::from_millis(10));
        let l = lease_one(&mut core, "w");
        assert_eq!(
            l.attempt, attempt,
            "the fencing token grows with every lease"
        );
        assert_eq!(l.unit_id, "p");
        fail_lease(
            &mut core,
            "w",
            &l,
            "out of memory",
            FailureReason::OutOfMemory,
        );
    }
    assert_eq!(
        state_of(&core, "prepare-model"),
        (0, 0, 0, 1),
        "failed after 2 attempts"
    );
    assert_eq!(state_of(&core, "search").3, 1, "its search cannot run");
    assert_eq!(state_of(&core, "evaluate").3, 1, "nor its evaluation");
    let st = core.status("s");
    assert!(st[0]
        .failures
        .iter()
        .any(|f| f.0 == "p" && f.2 == 2 && f.3 == "out of memory"));
    let failures = std::fs::read_dir(dir.path().join("results/s/failures"))
        .unwrap()
        .count();
    assert_eq!(
        failures, 2,
        "one failures part per counted attempt, none for the hand-back"
    );
    assert_eq!(core.retry_failed("s").unwrap(), 3);
    assert_eq!(lease_one(&mut core, "w").unit_id, "p");
}

#[test]
fn a_restart_drops_parts_the_ledger_never_committed_and_requeues_units_whose_part_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("results/s/models");
    {
        let units = vec![
            unit("p1", "prepare-model", "", &[]),
            unit("p2", "prepare-model", "", &[]),
            unit("p3", "prepare-model", "", &[]),
        ];
        let mut core = open_with(dir.path(), units);
        core.register("w", "w", now());
        for id in ["p1", "p2"] {
            let l = lease_one(&mut core, "w");
            assert_eq!(l.unit_id, id);
            complete_model(&mut core, "w", &l);
        }
        // A crash between the rename of p3's part and the ledger commit leaves a stray part ...
        std::fs::write(part_path(&table, "p3"), models_part("p3")).unwrap();
        // ... and a lost disk file leaves a done unit without its part.
        std::fs::remove_file(part_path(&table, "p2")).unwrap();
    }
    let core = open(dir.path());
    assert!(part_path(&table, "p1").exists());
    assert!(
        !part_path(&table, "p3").exists(),
        "the uncommitted part was dropped"
    );
    assert_eq!(
        state_of(&core, "prepare-model"),
        (2, 0, 1, 0),
        "p2 and p3 are pending again"
    );
}

#[test]
fn a_cancelled_sweep_tells_its_workers_and_refuses_their_results() {
    let dir = tempfile::tempdir().unwrap();
    let units = vec![
        unit("p1", "prepare-model", "", &[]),
        unit("p2", "prepare-model", "", &[]),
    ];
    let mut core = open_with(dir.path(), units);
    core.register("w", "w", now());
    let l = lease_one(&mut core, "w");
    assert_eq!(core.cancel("s").unwrap(), 2);
    let st = core.status("s");
    assert_eq!(st[0].kinds[0].cancelled, 2);
    let cancel = core
        .heartbeat("w", &[beat("s", &l.unit_id, l.attempt)], now())
        .unwrap()
        .unwrap();
    assert_eq!(
        cancel,
        vec![key(&l.unit_id)],
        "the worker is told to drop it"
    );
    let late = core.complete(
        &key(&l.unit_id),
        claim_of("w", &l),
        vec![("models".into(), models_part(&l.unit_id))],
        MODEL,
    );
    assert!(late.unwrap_err().to_string().contains("stale lease"));
    assert!(core
        .lease("w", 1, &HashSet::new(), now())
        .unwrap()
        .is_empty());
    assert!(core.cancel("nope").is_err());
}

#[test]
fn twin_sweeps_with_the_same_unit_ids_never_answer_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open(dir.path());
    for sweep in ["a", "b"] {
        submit(&mut core, sweep, vec![unit("p", "prepare-model", "", &[])]);
    }
    core.register("w1", "w1", now());
    core.register("w2", "w2", now());
    let l1 = lease_one(&mut core, "w1");
    let l2 = lease_one(&mut core, "w2");
    assert_eq!(l1.unit_id, l2.unit_id, "the same unit id in both sweeps");
    assert_ne!(l1.sweep, l2.sweep);
    // Each worker's heartbeat names its own sweep: neither is told to drop its unit.
    for (w, l) in [("w1", &l1), ("w2", &l2)] {
        let cancel = core
            .heartbeat(w, &[beat(&l.sweep, &l.unit_id, l.attempt)], now())
            .unwrap()
            .unwrap();
        assert!(cancel.is_empty(), "{w} was told to drop {cancel:?}");
    }
    // A report naming the other sweep's unit is not this worker's lease.
    let cancel = core
        .heartbeat("w1", &[beat(&l2.sweep, &l2.unit_id, l2.attempt)], now())
        .unwrap()
        .unwrap();
    assert_eq!(cancel, vec![key_of(&l2)]);
    for (w, l) in [("w1", &l1), ("w2", &l2)] {
        complete_model(&mut core, w, l);
    }
    for sweep in ["a", "b"] {
        let st = core.status(sweep);
        assert_eq!(st[0].kinds[0].done, 1, "{sweep}");
    }
    // A beat sent before the completion landed names a unit this lease finished: not cancelled.
    let late = core
        .heartbeat("w1", &[beat(&l1.sweep, &l1.unit_id, l1.attempt)], now())
        .unwrap()
        .unwrap();
    assert!(late.is_empty(), "{late:?}");
}

#[test]
fn invalid_input_fails_at_once_and_the_reason_lands_in_the_failures_table() {
    use arrow_array::cast::AsArray;
    let dir = tempfile::tempdir().unwrap();
    let mut core = open_with(dir.path(), vec![unit("p", "prepare-model", "", &[])]);
    core.register("w", "w", now());
    let l = lease_one(&mut core, "w");
    let why = "derive.from: wrong shape";
    fail_lease(&mut core, "w", &l, why, FailureReason::InvalidInput);
    assert_eq!(
        state_of(&core, "prepare-model"),
        (0, 0, 0, 1),
        "not retried: another attempt cannot help"
    );
    let failures = dir.path().join("results/s/failures");
    let part = std::fs::read_dir(&failures)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let b = &iscp_sweep::tables::read_batches(&part.path()).unwrap()[0];
    let reason = b.column_by_name("reason").unwrap().as_string::<i32>();
    assert_eq!(reason.value(0), "invalid_input");
    let retryable = b.column_by_name("retryable").unwrap().as_boolean();
    assert!(!retryable.value(0));
}

#[test]
fn failures_parts_from_before_version_2_get_a_reason_column_at_submit() {
    use arrow_array::cast::AsArray;
    use iscp_sweep::tables::{failures_batch, read_batches, write_part, FailureRow};
    let dir = tempfile::tempdir().unwrap();
    let failures = dir.path().join("results/s/failures");
    let mut old = failures_batch(&[FailureRow {
        unit_id: "p".into(),
        unit_kind: "prepare-model".into(),
        attempt: 1,
        worker: "w".into(),
        error: "boom".into(),
        reason: String::new(),
        retryable: true,
        time_ms: 0,
    }]);
    let at = old.schema().index_of("reason").unwrap();
    old.remove_column(at);
    write_part(&failures, "p-a1", &old).unwrap();
    let _core = open_with(dir.path(), vec![unit("p", "prepare-model", "", &[])]);
    let b = &read_batches(&part_path(&failures, "p-a1")).unwrap()[0];
    let names: Vec<String> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let now = failures_batch(&[]).schema();
    let want: Vec<String> = now.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, want, "the same columns as a part written today");
    let reason = b.column_by_name("reason").unwrap().as_string::<i32>();
    assert_eq!(reason.value(0), "internal");
    let error = b.column_by_name("error").unwrap().as_string::<i32>();
    assert_eq!(error.value(0), "boom", "the rest is kept");
}

#[test]
fn a_prepared_models_hash_comes_with_its_completion_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let units = || {
        vec![
            unit("p", "prepare-model", "", &[]),
            unit("s1", "search", "p", &["p"]),
        ]
    };
    let told = "cd".repeat(32);
    {
        let mut core = open_with(dir.path(), units());
        core.register("w", "w", now());
        let l = lease_one(&mut core, "w");
        let parts = vec![("models".to_string(), models_part_of("p", &told))];
        let refused = core.complete(&key("p"), claim_of("w", &l), parts.clone(), None);
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("names its model's sha256"),
            "a prepare completion without the model's hash"
        );
        core.complete(&key("p"), claim_of("w", &l), parts, Some(&told))
            .unwrap();
        let s = lease_one(&mut core, "w");
        assert_eq!(s.model_sha, told);
    }
    // After a restart the hash comes from the ledger, as told at completion (the part agrees).
    let mut core = open(dir.path());
    core.register("w2", "w2", now());
    let leased = core.lease("w2", 1, &HashSet::new(), now()).unwrap();
    let sha = match leased.first() {
        Some(s) => s.model_sha.clone(),
        None => {
            // The search is still leased to w from before the restart: wait out its TTL.
            advance(Duration::from_millis(150));
            core.expire(now()).unwrap();
            advance(Duration::from_millis(5));
            lease_one(&mut core, "w2").model_sha
        }
    };
    assert_eq!(sha, told);
}
