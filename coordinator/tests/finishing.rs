//! Units that finish a sweep (pictures, scan, transfer) are scheduled like the others: they wait
//! until everything they read is settled, read the parts of the units that succeeded (FetchPart
//! serves only those), a transfer without its model fails, and a pictures unit's files land only
//! when every path is one the results folder may hold.

mod common;

use common::{claim, complete_model, fail_lease, key, now, open_with, part, unit};
use iscp_proto::v1::{FailureReason, UnitKind};
use std::collections::HashSet;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n(a picture)";

#[test]
fn finishing_units_read_what_succeeded_and_land_only_checked_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open_with(
        dir.path(),
        vec![
            unit("p", "prepare-model", "", &[]),
            unit("q", "prepare-model", "", &[]),
            unit("s1", "search", "p", &["p"]),
            unit("s2", "search", "p", &["p"]),
            unit("e", "evaluate", "p", &["s1", "s2"]),
            unit("pic", "pictures", "", &["e", "s1", "s2"]),
            unit("scan", "scan", "", &["e"]),
            unit("tr", "transfer", "q", &["e", "s1", "s2", "q"]),
        ],
    );
    let held = HashSet::new();
    let lease_one = |core: &mut iscp_coordinator::scheduler::Scheduler| {
        let mut l = core.lease("w", 8, &held, now()).unwrap();
        assert!(!l.is_empty(), "nothing to lease");
        l.remove(0)
    };
    // Both models: p is prepared, q fails for good.
    for _ in 0..2 {
        let l = lease_one(&mut core);
        assert_eq!(l.kind, UnitKind::PrepareModel);
        if l.unit_id == "p" {
            complete_model(&mut core, "w", &l);
        } else {
            assert_eq!(l.unit_id, "q");
            fail_lease(&mut core, "w", &l, "bad", FailureReason::InvalidInput);
        }
    }
    // One search succeeds, one fails for good.
    let searches = core.lease("w", 8, &held, now()).unwrap();
    assert_eq!(searches.len(), 2);
    for l in &searches {
        assert_eq!(l.kind, UnitKind::Search);
        let c = claim("w", &l.lease_id, l.attempt);
        let k = key(&l.unit_id);
        if l.unit_id == "s1" {
            core.complete(
                &k,
                c,
                vec![("searches".into(), part("searches", "s1", ""))],
                None,
            )
            .unwrap();
        } else {
            core.fail(&k, c, "nan", FailureReason::InvalidInput, false, now())
                .unwrap();
        }
    }
    // Nothing that finishes the sweep is leased before the evaluation it reads is settled.
    let ev = core.lease("w", 8, &held, now()).unwrap();
    assert_eq!(
        ev.iter().map(|l| l.kind).collect::<Vec<_>>(),
        vec![UnitKind::Evaluate]
    );
    assert!(core.lease("w", 8, &held, now()).unwrap().is_empty());
    core.complete(
        &key("e"),
        claim("w", &ev[0].lease_id, ev[0].attempt),
        vec![("patterns".into(), part("patterns", "e", "s1"))],
        None,
    )
    .unwrap();
    // The transfer's model failed: so does the transfer. Pictures and the scan come next; they
    // fetch what they read, and only parts of done units are served.
    let mut leased = Vec::new();
    while let Some(l) = core.lease("w", 8, &held, now()).unwrap().into_iter().next() {
        leased.push(l);
    }
    let kinds: HashSet<UnitKind> = leased.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, HashSet::from([UnitKind::Pictures, UnitKind::Scan]));
    let results = dir.path().join("results/s");
    for (unit, table) in [("e", "patterns"), ("s1", "searches"), ("p", "models")] {
        let path = core.done_part(&key(unit), table).unwrap();
        assert_eq!(path, results.join(format!("{table}/part-{unit}.parquet")));
        assert!(path.exists());
    }
    for (unit, table) in [
        ("s2", "searches"), // failed
        ("e", "searches"),  // not a table an evaluation writes
        ("e", "../patterns"),
        ("../e", "patterns"),
        ("nope", "patterns"),
    ] {
        let e = core.done_part(&key(unit), table).unwrap_err();
        assert!(
            e.to_string().starts_with("not found"),
            "{unit} {table}: {e}"
        );
    }
    assert!(core
        .done_part(
            &iscp_coordinator::scheduler::UnitKey::new("other", "e"),
            "patterns"
        )
        .is_err());
    let st = core.status("s");
    let tr = st[0].kinds.iter().find(|k| k.kind == "transfer").unwrap();
    assert_eq!((tr.failed, tr.pending), (1, 0));

    // Files: refused whole (nothing written) unless every path is a picture under `images/`.
    let pic = leased
        .iter()
        .find(|l| l.kind == UnitKind::Pictures)
        .unwrap();
    let images = dir.path().join("results/s/images");
    for bad in [
        vec![
            ("images/a.png".to_string(), PNG.to_vec()),
            ("../../x.png".into(), PNG.to_vec()),
        ],
        vec![("images/a.png".to_string(), b"not a png".to_vec())],
        vec![("images/a/b/c.png".to_string(), PNG.to_vec())],
    ] {
        let r = core.complete_with_files(
            &key("pic"),
            claim("w", &pic.lease_id, pic.attempt),
            vec![],
            None,
            bad.clone(),
        );
        assert!(r.is_err(), "{bad:?} accepted");
        assert!(!images.exists(), "{bad:?} wrote something");
    }
    assert!(!dir.path().join("x.png").exists());
    // A scan may not write files at all.
    let scan = leased.iter().find(|l| l.kind == UnitKind::Scan).unwrap();
    let refused = core.complete_with_files(
        &key("scan"),
        claim("w", &scan.lease_id, scan.attempt),
        vec![("scan".into(), part("scan", "scan", ""))],
        None,
        vec![("images/a.png".into(), PNG.to_vec())],
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("cannot write files"));
    core.complete_with_files(
        &key("pic"),
        claim("w", &pic.lease_id, pic.attempt),
        vec![],
        None,
        vec![
            ("images/natural-best.png".into(), PNG.to_vec()),
            ("images/natural/class0.png".into(), PNG.to_vec()),
        ],
    )
    .unwrap();
    assert_eq!(
        std::fs::read(images.join("natural/class0.png")).unwrap(),
        PNG
    );
    assert!(images.join("natural-best.png").exists());
    let st = core.status("s");
    let pics = st[0].kinds.iter().find(|k| k.kind == "pictures").unwrap();
    assert_eq!(pics.done, 1);
}
