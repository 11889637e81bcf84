//! A hostile client against a real coordinator: uploads that name paths, sweeps or purposes of
//! their own, or that are too large, are refused, and no file appears anywhere (the whole
//! temporary root is listed before and after).

use crate::cluster::{client_at, lease_one, register, Cluster};
use crate::helpers::tiny_spec;
use iscp_proto::v1::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;

/// Every file and folder under `root` (the coordinator's log, which grows, aside).
fn listing(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            if rel.ends_with(".log") || rel.contains("ledger.sqlite") {
                continue;
            }
            out.insert(rel);
            if p.is_dir() {
                walk(&p, root, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn hostile_uploads_are_refused_and_write_nothing() {
    let mut c = Cluster::new();
    let _coord = c.coordinator(&["--max-artifact-mib", "1", "--lease-ttl-s", "60"]);
    c.submit("hostile", &tiny_spec("", "[0.2]"));
    let root = c.dir.path().to_path_buf();
    let url = c.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let client = client_at(url);
        register(client.clone(), "w").await;
        // The training unit, leased to w: the one unit it may upload for.
        let unit = lease_one(client.clone(), "w").await;
        assert_eq!(unit.kind(), UnitKind::PrepareModel);
        let before = listing(&root);
        let put = |sweep: &str,
                   unit_id: &str,
                   purpose: &str,
                   worker: &str,
                   data: Vec<u8>,
                   sha: Option<String>| {
            let sha = sha.unwrap_or_else(|| hex::encode(Sha256::digest(&data)));
            // An empty file still sends its header chunk (with no data).
            let pieces: Vec<&[u8]> = if data.is_empty() {
                vec![&[]]
            } else {
                data.chunks(iscp_proto::CHUNK_BYTES).collect()
            };
            let chunks: Vec<ArtifactChunk> = pieces
                .into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let head = |s: &str| if i == 0 { s.to_string() } else { String::new() };
                    ArtifactChunk {
                        sha256: head(&sha),
                        sweep: head(sweep),
                        data: d.to_vec(),
                        purpose: head(purpose),
                        unit_id: head(unit_id),
                        worker_id: head(worker),
                    }
                })
                .collect();
            let mut cl = client.clone();
            async move { cl.put_artifact(tokio_stream::iter(chunks)).await }
        };
        let small = b"weights".to_vec();
        let id = unit.unit_id.as_str();
        for (what, sweep, unit_id, purpose, worker, data, sha) in [
            (
                "climbing unit",
                "tiny",
                "../../../../escape",
                "checkpoint",
                "w",
                small.clone(),
                None,
            ),
            (
                "unit a/b",
                "tiny",
                "a/b",
                "checkpoint",
                "w",
                small.clone(),
                None,
            ),
            (
                "unit ..",
                "tiny",
                "..",
                "checkpoint",
                "w",
                small.clone(),
                None,
            ),
            (
                "unknown sweep",
                "nope",
                id,
                "model",
                "w",
                small.clone(),
                None,
            ),
            ("sweep ..", "..", id, "model", "w", small.clone(), None),
            (
                "unknown purpose",
                "tiny",
                id,
                "evil",
                "w",
                small.clone(),
                None,
            ),
            (
                "another worker",
                "tiny",
                id,
                "checkpoint",
                "x",
                small.clone(),
                None,
            ),
            (
                "sha of a path",
                "tiny",
                id,
                "model",
                "w",
                small.clone(),
                Some("../x".into()),
            ),
            (
                "wrong sha",
                "tiny",
                id,
                "model",
                "w",
                small.clone(),
                Some("ab".repeat(32)),
            ),
            ("0 bytes", "tiny", id, "model", "w", vec![], None),
            (
                "2 MiB over 1 MiB",
                "tiny",
                id,
                "model",
                "w",
                vec![7u8; 2 << 20],
                None,
            ),
        ] {
            let r = put(sweep, unit_id, purpose, worker, data, sha).await;
            let e = r.expect_err(what);
            assert_ne!(e.code(), tonic::Code::Ok, "{what}");
            assert_eq!(
                listing(&root),
                before,
                "{what} ({}) wrote something",
                e.message()
            );
        }
        // What the holder of the lease may do still works.
        put("tiny", id, "checkpoint", "w", small.clone(), None)
            .await
            .expect("the lease holder's checkpoint");
        let after = listing(&root);
        let new: Vec<&String> = after.difference(&before).collect();
        assert!(
            new.iter()
                .any(|p| p.starts_with("state/checkpoints/tiny/") && p.ends_with(".iscpm"))
                && new.iter().all(|p| p.starts_with("state/checkpoints")),
            "{new:?}"
        );
    });
}

/// A coordinator serves loopback by default; an address other machines reach is refused without a
/// token unless `--insecure` says so.
#[test]
fn a_coordinator_without_a_token_serves_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_iscp");
    let start = |extra: &[&str]| {
        let log = dir.path().join(format!("c{}.log", extra.len()));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = std::process::Command::new(bin)
            .args(["coordinator", "--state"])
            .arg(dir.path().join("state"))
            .arg("--results")
            .arg(dir.path().join("results"))
            .args(extra)
            .env_remove("ISCP_TOKEN")
            .env_remove("ISCP_TOKEN_FILE")
            .env_remove("ISCP_LISTEN")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(status) = child.try_wait().unwrap() {
                return (Some(status.code()), text);
            }
            if text.contains("coordinator listening on") {
                child.kill().unwrap();
                child.wait().unwrap();
                return (None, text);
            }
            assert!(std::time::Instant::now() < deadline, "{text}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let (exited, text) = start(&["--listen", "0.0.0.0:0"]);
    assert_eq!(exited, Some(Some(1)), "{text}");
    assert!(
        text.contains("refusing to serve") && text.contains("--insecure"),
        "{text}"
    );
    let (exited, text) = start(&["--listen", "0.0.0.0:0", "--insecure"]);
    assert_eq!(exited, None, "{text}");
    let (exited, text) = start(&["--listen", "0.0.0.0:0", "--token", "t"]);
    assert_eq!(exited, None, "{text}");
    assert!(text.contains("token required"), "{text}");
    // The default address is loopback.
    let (exited, text) = start(&["--listen", "127.0.0.1:0"]);
    assert_eq!(exited, None, "{text}");
    let out = std::process::Command::new(bin)
        .args(["coordinator", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("[default: 127.0.0.1:50051]"));
}
