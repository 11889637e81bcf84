//! The distributed path as separate processes on loopback: a coordinator, workers, the admin
//! commands; killed workers and a killed coordinator; tokens and stale fencing tokens.

use crate::helpers::{first_error, parts, rows, tiny_spec};
use arrow_array::cast::AsArray;
use iscp_sweep::tables::read_batches;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_iscp");

/// A process that is killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    /// Waits up to `secs` for the process to exit on its own (`what` it is, in the failure).
    pub fn wait_exit(&mut self, secs: u64, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{what}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pub fn term(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(args: &[&str], log: &Path, envs: &[(&str, &str)]) -> Proc {
    let file = std::fs::File::create(log).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .env_remove("ISCP_TOKEN")
        .env_remove("ISCP_COORDINATOR")
        .env("ISCP_LOG", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().expect("iscp starts"),
        log: log.to_path_buf(),
    }
}

/// A test cluster's folder: state, results, logs.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub listen: String,
    /// Arguments every admin command gets (a token file, say).
    pub admin_args: Vec<String>,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster {
            dir: tempfile::tempdir().unwrap(),
            url: String::new(),
            listen: "127.0.0.1:0".into(),
            admin_args: Vec::new(),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Starts the coordinator (on the address of the previous start, if any) and waits for it.
    pub fn coordinator(&mut self, extra: &[&str]) -> Proc {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.path(&format!("coordinator-{n}.log"));
        let state = self.path("state");
        let results = self.path("results");
        let mut args = vec![
            "coordinator",
            "--listen",
            &self.listen,
            "--state",
            state.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--heartbeat-s",
            "0.3",
            "--retry-backoff-s",
            "0.2",
        ];
        args.extend_from_slice(extra);
        let p = spawn(&args, &log, &[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = p.log();
            if let Some(rest) = text.split("coordinator listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().to_string();
                self.url = format!("http://{addr}");
                self.listen = addr;
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "the coordinator did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn worker(&self, name: &str, extra: &[&str]) -> Proc {
        let log = self.path(&format!("worker-{name}.log"));
        let cache = self.path(&format!("cache-{name}"));
        let mut args = vec![
            "worker",
            "--coordinator",
            &self.url,
            "--name",
            name,
            "--cache",
            cache.to_str().unwrap(),
            "--threads",
            "1",
            "--grace-s",
            "2",
        ];
        args.extend_from_slice(extra);
        spawn(&args, &log, &[])
    }

    /// Runs an admin command against the coordinator.
    pub fn admin(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .args(["--coordinator", &self.url])
            .args(&self.admin_args)
            .env_remove("ISCP_TOKEN")
            .output()
            .unwrap()
    }

    pub fn submit(&self, name: &str, spec: &str) -> String {
        let (out, text) = self.try_submit(&format!("{name}.toml"), spec);
        assert!(out.status.success(), "submit failed: {text}");
        text
    }

    /// Writes `spec` to `file` in the cluster's folder and submits it: the command, and its
    /// stdout and stderr together.
    pub fn try_submit(&self, file: &str, spec: &str) -> (Output, String) {
        let path = self.path(file);
        std::fs::write(&path, spec).unwrap();
        let out = self.admin(&["submit", path.to_str().unwrap()]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text)
    }

    pub fn status(&self) -> String {
        let out = self.admin(&["status"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until `pred(status)` holds.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                let mut logs = String::new();
                for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
                    if e.path().extension().is_some_and(|x| x == "log") {
                        let mut t = String::new();
                        std::fs::File::open(e.path())
                            .unwrap()
                            .read_to_string(&mut t)
                            .unwrap();
                        let tail: String = t
                            .chars()
                            .rev()
                            .take(3000)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        logs += &format!("--- {}\n{tail}\n", e.path().display());
                    }
                }
                panic!("timed out waiting for {what}; status:\n{s}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn results(&self, sweep: &str) -> PathBuf {
        self.path("results").join(sweep)
    }
}

/// Waits until worker a holds the sweep's prepare unit (one `prepare-model` unit leased).
fn wait_for_prepare_leased(c: &Cluster) {
    c.wait_for("worker a to lease the prepare unit", 60, |s| {
        s.lines().any(|l| {
            l.trim_start().starts_with("prepare-model") && l.split_whitespace().nth(2) == Some("1")
        })
    });
}

/// A client of the coordinator at `url`.
pub fn client_at(url: String) -> iscp_worker::Client {
    iscp_worker::connect(&iscp_worker::Connect {
        url,
        ..Default::default()
    })
    .unwrap()
}

/// Registers the worker `id` (named `id` too) over `client`.
pub async fn register(mut client: iscp_worker::Client, id: &str) {
    use iscp_proto::v1::RegisterWorkerParams;
    client
        .register_worker(RegisterWorkerParams {
            protocol_version: iscp_proto::PROTOCOL_VERSION,
            worker_id: id.to_string(),
            name: id.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// The first unit the worker `id` leases over `client` (waiting up to 5 s for one).
pub async fn lease_one(mut client: iscp_worker::Client, id: &str) -> iscp_proto::v1::LeasedUnit {
    use iscp_proto::v1::LeaseUnitsParams;
    client
        .lease_units(LeaseUnitsParams {
            protocol_version: iscp_proto::PROTOCOL_VERSION,
            worker_id: id.to_string(),
            max_units: 1,
            wait_ms: 5000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .units
        .remove(0)
}

/// The `unit_id` values of every row of a table.
pub fn unit_ids(table: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for p in parts(table) {
        for b in read_batches(&p).unwrap() {
            let col = b.column_by_name("unit_id").unwrap().as_string::<i32>();
            out.extend(col.iter().map(|s| s.unwrap().to_string()));
        }
    }
    out
}

/// Every done unit's rows appear exactly once: one part per unit, no unit twice.
pub fn assert_exactly_once(root: &Path, table: &str, expected_units: usize) {
    let dir = root.join(table);
    let ids = unit_ids(&dir);
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(parts(&dir).len(), expected_units, "{table}: parts");
    assert_eq!(distinct.len(), expected_units, "{table}: distinct units");
    if table == "searches" || table == "models" {
        assert_eq!(ids.len(), expected_units, "{table}: one row per unit");
    }
}

/// The smoke spec's every table, each unit exactly once: 2 models, 120 searches, 40 evaluations,
/// 40 baselines, and no failure.
pub fn assert_smoke_once(root: &Path) {
    assert_exactly_once(root, "models", 2);
    assert_exactly_once(root, "searches", 120);
    assert_exactly_once(root, "patterns", 40);
    assert_exactly_once(root, "baselines", 40);
    assert!(
        parts(&root.join("failures")).is_empty(),
        "failures: {:?}",
        parts(&root.join("failures"))
    );
}

/// The (done) count of a kind in `iscp status` output.
pub fn done_of(status: &str, kind: &str) -> u64 {
    status
        .lines()
        .find(|l| l.trim_start().starts_with(kind))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn three_workers_run_the_smoke_spec_to_the_end_with_every_unit_once() {
    let mut c = Cluster::new();
    let _coord = c.coordinator(&[]);
    let _w: Vec<Proc> = ["a", "b", "c"].iter().map(|n| c.worker(n, &[])).collect();
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/smoke.toml"
    ))
    .unwrap();
    let out = c.submit("smoke", &spec);
    // 202 units of rows, and per setting (natural, BadNets) its pictures and its scan.
    assert!(out.contains("206 units (206 new"), "{out}");
    let mut watch = spawn(
        &["watch", "smoke", "--quiet", "--coordinator", &c.url],
        &c.path("watch.log"),
        &[],
    );
    let s = c.wait_for("the smoke sweep to finish", 300, |s| {
        s.contains("(finished)")
    });
    // The watcher ended with the sweep, a line per finished stage naming the slot it ran on.
    watch.wait_exit(20, "watch did not end");
    let seen = watch.log();
    for want in [
        ": natural: training, 3 epochs in",
        "searches (class",
        "smoke: ",
    ] {
        assert!(seen.contains(want), "watch printed no `{want}`:\n{seen}");
    }
    let slots: HashSet<&str> = seen
        .lines()
        .filter_map(|l| l.split("] ").nth(1)?.split(" cpu: ").next())
        .filter(|w| ["a", "b", "c"].contains(w))
        .collect();
    assert!(slots.len() >= 2, "stage lines name {slots:?}:\n{seen}");
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    let root = c.results("smoke");
    assert_smoke_once(&root);
    // Every worker ran something, and searches were batched on a worker.
    let workers: HashSet<String> = {
        let mut w = HashSet::new();
        for p in parts(&root.join("searches")) {
            for b in read_batches(&p).unwrap() {
                let col = b.column_by_name("worker").unwrap().as_string::<i32>();
                w.extend(col.iter().map(|s| s.unwrap().to_string()));
            }
        }
        w
    };
    assert!(workers.len() >= 2, "searches ran on {workers:?}");
    // The workers finished the sweep: pictures, and a scan part per setting.
    assert!(root.join("images").read_dir().unwrap().count() > 0);
    assert_eq!(parts(&root.join("scan")).len(), 2);
}

/// Quick synthetic spec with `epochs` of training, so a prepare unit runs for a few seconds.
fn slow_prepare_spec(name: &str, epochs: usize) -> String {
    tiny_spec("", "[0.2]")
        .replace("name = \"tiny\"", &format!("name = \"{name}\""))
        .replace("train = 600", "train = 3000")
        .replace(
            "train = { epochs = 1, batch = 32, lr = 0.05 }",
            &format!("train = {{ epochs = {epochs}, batch = 32, lr = 0.05 }}"),
        )
}

/// A cluster whose coordinator runs with `coordinator` and worker a, sent
/// `slow_prepare_spec(name, epochs)` as `file`: the cluster, its coordinator and worker a.
fn slow_sweep(
    coordinator: &[&str],
    file: &str,
    name: &str,
    epochs: usize,
) -> (Cluster, Proc, Proc) {
    let mut c = Cluster::new();
    let coord = c.coordinator(coordinator);
    let a = c.worker("a", &[]);
    c.submit(file, &slow_prepare_spec(name, epochs));
    (c, coord, a)
}

#[test]
fn a_worker_killed_mid_unit_loses_its_lease_and_the_sweep_ends_with_every_unit_once() {
    let (c, _coord, mut a) = slow_sweep(&["--lease-ttl-s", "2"], "slow", "slow", 6);
    wait_for_prepare_leased(&c);
    // Killed as soon as it holds the lease: however fast the machine, the unit is not done yet.
    a.kill9();
    let _b = c.worker("b", &[]);
    let s = c.wait_for("the sweep to finish", 240, |s| s.contains("(finished)"));
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    let root = c.results("slow");
    assert_exactly_once(&root, "models", 1);
    assert_exactly_once(&root, "searches", 9);
    assert_exactly_once(&root, "patterns", 3);
    let failures = unit_ids(&root.join("failures"));
    assert_eq!(failures.len(), 1, "one expired attempt recorded");
    let err = first_error(&root.join("failures"));
    assert!(
        err.contains("lease expired") && err.contains("worker a"),
        "{err}"
    );
}

#[test]
fn a_worker_stopped_with_sigterm_hands_its_unit_back_without_counting_an_attempt() {
    let (c, _coord, mut a) = slow_sweep(&[], "slow", "term", 40);
    wait_for_prepare_leased(&c);
    a.term();
    let code = a.child.wait().unwrap();
    assert!(code.success(), "{code:?} {}", a.log());
    assert!(
        a.log()
            .contains("0 units completed, 0 failed, 1 handed back"),
        "{}",
        a.log()
    );
    // Handed back, not expired: another worker takes it with no failure recorded (the TTL is
    // 30 s; an expiry would leave a failure row).
    let _b = c.worker("b", &[]);
    let s = c.wait_for("the sweep to finish", 240, |s| s.contains("(finished)"));
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    assert!(
        parts(&c.results("term").join("failures")).is_empty(),
        "the hand-back counted as a failure"
    );
    assert_exactly_once(&c.results("term"), "searches", 9);
}

#[test]
fn a_coordinator_killed_mid_sweep_and_restarted_completes_it_with_no_row_lost_or_doubled() {
    let mut c = Cluster::new();
    let mut coord = c.coordinator(&["--lease-ttl-s", "5"]);
    let _w: Vec<Proc> = ["a", "b"]
        .iter()
        .map(|n| c.worker(n, &["--max-units", "2"]))
        .collect();
    // Searches of 60 epochs: the sweep lasts seconds, so the kill lands mid-sweep even when
    // each status poll (a process) is slow on a loaded machine (with one epoch the whole sweep
    // could finish between two polls, and the watcher with it).
    let spec = tiny_spec("", "[0.1, 0.2, 0.3]")
        .replace("name = \"tiny\"", "name = \"restart\"")
        .replace("epochs = 1\nsizes", "epochs = 60\nsizes");
    assert!(spec.contains("epochs = 60"), "{spec}");
    c.submit("restart", &spec);
    // A watcher started before the kill follows the sweep across the restart to its end.
    let mut watch = spawn(
        &["watch", "restart", "--quiet", "--coordinator", &c.url],
        &c.path("watch.log"),
        &[],
    );
    c.wait_for("some searches to finish", 120, |s| {
        done_of(s, "search") >= 4
    });
    coord.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let _coord = c.coordinator(&["--lease-ttl-s", "5"]);
    let s = c.wait_for("the sweep to finish after the restart", 240, |s| {
        s.contains("(finished)")
    });
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    let ended = watch.wait_exit(30, "watch did not end");
    let seen = watch.log();
    assert!(ended.success(), "{seen}");
    assert!(
        seen.contains("reconnecting") && seen.contains("watching again"),
        "{seen}"
    );
    let root = c.results("restart");
    assert_exactly_once(&root, "models", 1);
    assert_exactly_once(&root, "searches", 27);
    assert_exactly_once(&root, "patterns", 9);
    assert_eq!(rows(&root.join("searches")), 27);
}

#[test]
fn a_malformed_spec_is_refused_at_submit_and_the_coordinator_keeps_serving() {
    let mut c = Cluster::new();
    let _coord = c.coordinator(&[]);
    let bad = c.path("bad.toml");
    let text = tiny_spec("", "[0.2, 1.5]");
    let line = text.lines().position(|l| l.starts_with("alphas")).unwrap() + 1;
    std::fs::write(&bad, &text).unwrap();
    let out = c.admin(&["submit", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("bad.toml:{line}: `search.alphas`")),
        "{err}"
    );
    let status = c.status();
    assert!(status.contains("no sweeps"), "{status}");
    let ok = c.submit("fine", &tiny_spec("", "[0.2]"));
    assert!(ok.contains("submitted tiny"), "{ok}");
}

#[test]
fn calls_without_the_token_or_with_a_wrong_one_are_refused() {
    let mut c = Cluster::new();
    let _coord = c.coordinator(&["--token", "s3cret"]);
    let none = c.admin(&["status"]);
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains("refused the token") && err.contains("needs a token"),
        "{err}"
    );
    let wrong = c.admin(&["status", "--token", "guess"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong token"));
    let right = c.admin(&["status", "--token", "s3cret"]);
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    // A worker with a wrong token stops at once with the reason.
    let mut w = c.worker("intruder", &["--token", "guess"]);
    let code = w.wait_exit(20, "the worker kept running");
    assert!(!code.success());
    assert!(
        w.log().contains("refused this worker: wrong token"),
        "{}",
        w.log()
    );
}

#[test]
fn a_completion_with_a_stale_fencing_token_over_the_wire_is_refused_and_leaves_no_row() {
    use iscp_proto::v1::*;
    use iscp_proto::PROTOCOL_VERSION;
    let mut c = Cluster::new();
    let _coord = c.coordinator(&["--lease-ttl-s", "1"]);
    c.submit("stale", &tiny_spec("", "[0.2]"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = c.url.clone();
    let table = c.results("tiny").join("models");
    rt.block_on(async move {
        let client = client_at(url);
        // A protocol mismatch is refused with both versions.
        let old = client
            .clone()
            .register_worker(RegisterWorkerParams {
                protocol_version: 0,
                worker_id: "old".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            old.message().contains("speaks version 0")
                && old
                    .message()
                    .contains(&format!("speaks version {PROTOCOL_VERSION}"))
        );
        register(client.clone(), "a").await;
        register(client.clone(), "b").await;
        let la = lease_one(client.clone(), "a").await;
        assert_eq!((la.kind(), la.attempt), (UnitKind::PrepareModel, 1));
        // Worker a goes silent; after the TTL the unit is leased to b with a new token.
        let lb = lease_one(client.clone(), "b").await;
        assert_eq!((lb.unit_id.as_str(), lb.attempt), (la.unit_id.as_str(), 2));
        let complete = |u: &LeasedUnit, worker: &str, attempt: u64| CompleteUnitParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: worker.into(),
            sweep: u.sweep.clone(),
            unit_id: u.unit_id.clone(),
            lease_id: u.lease_id.clone(),
            attempt,
            parts: vec![TablePart {
                table: "models".into(),
                parquet: models_part(&u.unit_id),
            }],
            model_sha256: "ab".repeat(32),
            files: vec![],
        };
        // A completion the coordinator must refuse: its error.
        let refused = |params: CompleteUnitParams| {
            let mut cl = client.clone();
            async move { cl.complete_unit(params).await.unwrap_err() }
        };
        let stale = refused(complete(&la, "a", 1)).await;
        assert_eq!(stale.code(), tonic::Code::FailedPrecondition);
        assert!(
            stale.message().contains("stale lease"),
            "{}",
            stale.message()
        );
        let foreign = refused(complete(&lb, "a", 2)).await;
        assert_eq!(foreign.code(), tonic::Code::FailedPrecondition);
        assert!(
            !table.exists() || parts(&table).is_empty(),
            "a refused completion left a part"
        );
        client
            .clone()
            .complete_unit(complete(&lb, "b", 2))
            .await
            .unwrap();
        assert_eq!(rows(&table), 1);
    });
}

/// A valid `models` part for a unit, as a worker would send it.
fn models_part(unit: &str) -> Vec<u8> {
    use iscp_sweep::tables::{encode_parquet, models_batch, ModelRow};
    let row = ModelRow {
        unit_id: unit.into(),
        setting: "natural".into(),
        setting_kind: "natural".into(),
        architecture: "small-cnn".into(),
        source: "trained".into(),
        checkpoint_sha256: "ab".repeat(32),
        clean_accuracy: 0.9,
        attack_success_rate: None,
        poison_target: None,
        trigger: None,
        trigger_family: None,
        trigger_row: None,
        trigger_col: None,
        trigger_size: None,
        attack_failed: None,
        robust_accuracy: None,
        poison_rate: None,
        poisoned_images: None,
        train_epochs: Some(1),
        training_s: 1.0,
        forward_images_per_s: None,
        search_images_per_s: None,
        train_images_per_s: None,
    };
    encode_parquet(&models_batch(&[row])).unwrap()
}

#[test]
fn tls_with_a_given_ca_is_trusted_and_a_client_without_it_is_not() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let mut c = Cluster::new();
    let (cert_pem, key_pem, ca_pem) = (c.path("cert.pem"), c.path("key.pem"), c.path("ca.pem"));
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let _coord = c.coordinator(&[
        "--tls-cert",
        cert_pem.to_str().unwrap(),
        "--tls-key",
        key_pem.to_str().unwrap(),
    ]);
    c.url = c.url.replace("http://", "https://");
    let trusted = c.admin(&["status", "--ca", ca_pem.to_str().unwrap()]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("no sweeps"));
    let untrusted = c.admin(&["status"]);
    assert!(!untrusted.status.success());
    // A worker trusting the CA runs a sweep over TLS.
    let _w = c.worker("tls", &["--ca", ca_pem.to_str().unwrap()]);
    let path = c.path("tiny.toml");
    std::fs::write(&path, tiny_spec("", "[0.2]")).unwrap();
    let out = c.admin(&[
        "submit",
        path.to_str().unwrap(),
        "--ca",
        ca_pem.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = c.admin(&["status", "--ca", ca_pem.to_str().unwrap()]);
        if String::from_utf8_lossy(&s.stdout).contains("(finished)") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sweep did not finish over TLS"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_exactly_once(&c.results("tiny"), "searches", 9);
}

#[test]
fn a_training_unit_leased_again_resumes_on_another_worker_from_the_last_checkpoint() {
    use arrow_array::types::Int64Type;
    let (c, _coord, mut a) = slow_sweep(&["--lease-ttl-s", "2"], "ckpt", "ckpt", 40);
    // The coordinator keeps uploaded checkpoints in its state directory.
    let stored = c.path("state/checkpoints");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored_files = || -> HashSet<PathBuf> {
        std::fs::read_dir(&stored)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|sweep| {
                std::fs::read_dir(sweep.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .flat_map(|unit| {
                std::fs::read_dir(unit.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|f| f.path())
            // An upload in progress streams into a hidden temporary file: not a checkpoint.
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect()
    };
    let first = loop {
        let now = stored_files();
        if !now.is_empty() {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint reached the coordinator:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Once a newer checkpoint is recorded (by a heartbeat), the first uploads are dropped: at
    // any speed, the first files go and a newer one stays. Worker a then dies mid-training.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = stored_files();
        if !now.is_empty() && now.is_disjoint(&first) {
            break;
        }
        assert!(
            a.child.try_wait().unwrap().is_none(),
            "worker a stopped before a newer checkpoint was recorded:\n{}",
            a.log()
        );
        assert!(
            Instant::now() < deadline,
            "older checkpoints are never dropped as newer ones are recorded: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill9();
    let b = c.worker("b", &[]);
    let s = c.wait_for("the sweep to finish on worker b", 240, |s| {
        s.contains("(finished)")
    });
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    let log = b.log();
    let resumed = log
        .split("resumed training from its checkpoint after epoch ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        resumed.is_some_and(|e| (1..40).contains(&e)),
        "worker b started over:\n{log}"
    );
    let root = c.results("ckpt");
    let mut epochs = Vec::new();
    for p in parts(&root.join("training")) {
        for b in read_batches(&p).unwrap() {
            let col = b
                .column_by_name("epoch")
                .unwrap()
                .as_primitive::<Int64Type>();
            epochs.extend(col.values().iter().copied());
        }
    }
    epochs.sort();
    assert_eq!(
        epochs,
        (0..40).collect::<Vec<i64>>(),
        "every epoch exactly once"
    );
    assert_exactly_once(&root, "models", 1);
    assert_eq!(
        stored_files(),
        HashSet::new(),
        "checkpoints are dropped once the model is done"
    );
}

/// Masks of every search row of a sweep, by unit id.
fn masks(root: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let mut out = std::collections::BTreeMap::new();
    for p in parts(&root.join("searches")) {
        for r in iscp_sweep::tables::read_search_rows(&p).unwrap() {
            out.insert(r.unit_id, r.mask);
        }
    }
    out
}

#[test]
fn twin_sweeps_with_identical_units_run_at_once_on_two_workers_without_disturbing_each_other() {
    let mut c = Cluster::new();
    let _coord = c.coordinator(&[]);
    let twin = |name: &str| {
        tiny_spec("", "[0.1, 0.2]").replace("name = \"tiny\"", &format!("name = \"{name}\""))
    };
    // Submitted before any worker starts, so that both sweeps' units are leased side by side.
    c.submit("twin-a", &twin("twin-a"));
    c.submit("twin-b", &twin("twin-b"));
    let w: Vec<Proc> = ["a", "b"].iter().map(|n| c.worker(n, &[])).collect();
    let s = c.wait_for("both sweeps to finish", 300, |s| {
        s.matches("(finished)").count() == 2
    });
    assert!(!s.lines().any(|l| l.starts_with("  failed ")), "{s}");
    for sweep in ["twin-a", "twin-b"] {
        let root = c.results(sweep);
        assert!(
            parts(&root.join("failures")).is_empty(),
            "{sweep}: a failure (an expired lease?) was recorded"
        );
        assert_exactly_once(&root, "models", 1);
        assert_exactly_once(&root, "searches", 18);
        assert_exactly_once(&root, "patterns", 6);
    }
    for p in &w {
        let log = p.log();
        assert!(
            !log.contains("is no longer ours") && !log.contains("dropping the result"),
            "a healthy unit was cancelled:\n{log}"
        );
    }
    // The same units in both sweeps, selecting the same pixels.
    let (a, b) = (masks(&c.results("twin-a")), masks(&c.results("twin-b")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (id, m) in &a {
        let k = iscp_engine::pattern::pattern_k(0.1, m.len());
        iscp_engine::agreement::same_selection(m, &b[id], k, 0.05)
            .unwrap_or_else(|e| panic!("search {id} differs between the twins: {e}"));
    }
}
