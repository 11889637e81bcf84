//! The deployment files as the tools that read them would: the Kubernetes manifests against the
//! Kubernetes object schemas, the compose file's commands and health check against the binary's
//! own argument parser, volumes and grace periods against the commands
//! (`tests/deploy/check_deploy.py`); and the checker catches what it is for.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check(k8s: &Path, compose: &Path) -> Output {
    let python = std::env::var("ISCP_PYREAD_PYTHON").expect(
        "ISCP_PYREAD_PYTHON (set by `make test`) names a python with pyyaml and kubernetes",
    );
    Command::new(python)
        .arg(format!("{ROOT}/tests/deploy/check_deploy.py"))
        .arg(env!("CARGO_BIN_EXE_iscp"))
        .arg(k8s)
        .arg(compose)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_kubernetes_manifests_and_the_compose_file_are_valid() {
    let out = check(
        &PathBuf::from(ROOT).join("deploy/k8s"),
        &PathBuf::from(ROOT).join("docker-compose.yml"),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for want in [
        "StatefulSet iscp-coordinator",
        "Service iscp-coordinator",
        "Deployment iscp-worker",
        "Secret iscp-token",
        "service coordinator",
        "service worker-gpu0",
    ] {
        assert!(
            t.contains(&format!("checked {}", want)) || t.contains(want),
            "{want} not checked:\n{t}"
        );
    }
}

#[test]
fn the_checker_refuses_an_unknown_field_a_bad_flag_and_a_short_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let k8s = dir.path().join("k8s");
    std::fs::create_dir(&k8s).unwrap();
    let workers = std::fs::read_to_string(format!("{ROOT}/deploy/k8s/workers.yaml")).unwrap();
    std::fs::write(
        k8s.join("workers.yaml"),
        workers
            .replace(
                "terminationGracePeriodSeconds: 120",
                "terminationGracePeriodSeconds: 60",
            )
            .replace(
                "emptyDir: {sizeLimit: 50Gi}",
                "emptyDir: {sizeLimit: 50Gi, sizeLimt: 1}",
            ),
    )
    .unwrap();
    let compose = dir.path().join("docker-compose.yml");
    let c = std::fs::read_to_string(format!("{ROOT}/docker-compose.yml")).unwrap();
    std::fs::write(
        &compose,
        c.replace("\"--grace-s\", \"50\"", "\"--grace-seconds\", \"50\""),
    )
    .unwrap();
    let out = check(&k8s, &compose);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("sizeLimt") && t.contains("Extra inputs"), "{t}");
    assert!(t.contains("is not above --grace-s 90"), "{t}");
    assert!(
        t.contains("service worker-gpu0: `iscp worker") && t.contains("does not parse"),
        "{t}"
    );
}
