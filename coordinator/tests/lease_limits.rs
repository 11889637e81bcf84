//! A lease is recorded only when it can be delivered (its message within the limit, else the unit
//! fails with that reason and costs nothing more), specs are bounded at submit, and expired leases
//! are counted apart from a unit's own failures.

mod common;

use common::{advance, config, fail_lease, key, lease_one, now, open_config, submit, unit};
use iscp_coordinator::scheduler::{NewUnit, Scheduler, UnitState};
use iscp_coordinator::server::Service;
use iscp_proto::v1::FailureReason;
use std::collections::HashSet;

fn with_params(mut u: NewUnit, params: &str) -> NewUnit {
    u.params = params.to_string();
    u
}

fn state(core: &Scheduler, id: &str) -> UnitState {
    core.unit_state(&key(id)).expect("a unit")
}

#[test]
fn leases_fit_the_message_limit_or_fail_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_lease_bytes = 20_000;
    let mut core = open_config(cfg);
    // Each unit carries its parameters (9,000 bytes) and room for framing: one fits a lease, two
    // do not. The spec's text is not in the lease (a worker fetches it once): its size is free.
    let big = "#".repeat(9_000);
    let units = ["a", "b", "c"]
        .into_iter()
        .map(|id| with_params(unit(id, "noop", "", &[]), &big))
        .collect();
    core.submit("s", "sha", "f", &"#".repeat(50_000), units, now())
        .unwrap();
    let first = core.lease("w", 8, &HashSet::new(), now()).unwrap();
    assert_eq!(
        first.len(),
        1,
        "9,000 + 4,096 bytes each: one per 20,000-byte lease"
    );
    let second = core.lease("w", 8, &HashSet::new(), now()).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(state(&core, &second[0].unit_id), UnitState::Leased);
    let third = core.lease("w", 8, &HashSet::new(), now()).unwrap();
    assert_eq!(third.len(), 1);
    assert!(core
        .lease("w", 8, &HashSet::new(), now())
        .unwrap()
        .is_empty());

    // Parameters so large that one unit alone cannot be delivered: failed for good, not leased.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_lease_bytes = 8_000;
    let mut core = open_config(cfg);
    submit(
        &mut core,
        "s",
        vec![with_params(unit("a", "noop", "", &[]), &big)],
    );
    assert!(core
        .lease("w", 8, &HashSet::new(), now())
        .unwrap()
        .is_empty());
    assert_eq!(state(&core, "a"), UnitState::Failed);
    let failures = dir.path().join("results/s/failures");
    assert_eq!(std::fs::read_dir(&failures).unwrap().count(), 1);
}

#[test]
fn specs_larger_than_the_limit_are_refused_at_submit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_spec_bytes = 1_000;
    let svc = Service::open(cfg).unwrap();
    let source = format!("name = \"big\"\n{}", "# padding\n".repeat(200));
    let err = svc
        .submit_source(&source, "big.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than this coordinator accepts"), "{err}");
    assert!(!dir.path().join("results/big").exists());
}

#[test]
fn expired_leases_do_not_use_up_a_units_own_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path()); // max_attempts 2, lease ttl 100 ms
    cfg.max_expiries = 4;
    let mut core = open_config(cfg);
    submit(&mut core, "s", vec![unit("a", "noop", "", &[])]);
    let expire_once = |core: &mut Scheduler| {
        assert_eq!(core.lease("w", 1, &HashSet::new(), now()).unwrap().len(), 1);
        advance(std::time::Duration::from_millis(120));
        assert_eq!(core.expire(now()).unwrap(), 1);
    };
    // Three deaths of its worker: more than `max_attempts`, fewer than `max_expiries`.
    for _ in 0..3 {
        expire_once(&mut core);
        assert_eq!(state(&core, "a"), UnitState::Pending);
    }
    // One failure of its own still leaves it an attempt.
    let l = lease_one(&mut core, "w");
    fail_lease(&mut core, "w", &l, "boom", FailureReason::Internal);
    assert_eq!(state(&core, "a"), UnitState::Pending);
    // The fourth expiry is the budget.
    advance(std::time::Duration::from_millis(10));
    expire_once(&mut core);
    assert_eq!(state(&core, "a"), UnitState::Failed);
}
