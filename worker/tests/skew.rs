//! A lease is run from the parameters it carries, which must hash to its id: a unit whose
//! parameters give another id (a worker and a coordinator that plan differently) fails as a
//! version skew naming both ids, and is not retried.

mod common;

use iscp_proto::v1::{FailureReason, LeasedUnit};
use iscp_sweep::spec::LoadedSpec;
use iscp_sweep::units::plan;
use iscp_worker::executor::Executor;
use sha2::Digest;
use tch::Device;

#[test]
fn a_unit_whose_parameters_give_another_id_fails_as_a_version_skew() {
    let dir = tempfile::tempdir().unwrap();
    let text = common::spec("skew", 3, 120, 60, "[{ kind = \"white\" }]");
    let spec = LoadedSpec::parse_for_plan(&text, "skew.toml").unwrap();
    let p = plan(&spec, 3, 120).remove(0);
    let search = &p.searches[0];
    let spec_sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let lease = |params_json: String| LeasedUnit {
        sweep: "skew".into(),
        unit_id: search.id.clone(),
        kind: iscp_proto::v1::UnitKind::Search.into(),
        attempt: 1,
        spec_sha256: spec_sha.clone(),
        spec_file: "skew.toml".into(),
        params_json,
        ..Default::default()
    };
    let mut ex = Executor::new(Device::Cpu, "cpu", "test", dir.path().to_path_buf());
    ex.specs = Some(iscp_worker::specs::known(&[(
        &spec_sha,
        &text,
        "skew.toml",
    )]));
    // Another unit's parameters under this unit's id.
    let other = p.searches[1].params_json();
    let f = ex.run(&[lease(other)]).remove(0).unwrap_err();
    assert_eq!(f.reason, FailureReason::VersionSkew);
    assert!(!f.retryable());
    assert!(
        f.error.contains(&search.id) && f.error.contains(&p.searches[1].id),
        "{}",
        f.error
    );
    assert!(
        f.error
            .contains(&format!("protocol {}", iscp_proto::PROTOCOL_VERSION)),
        "{}",
        f.error
    );
    // No parameters at all: a coordinator from before they travelled.
    let f = ex.run(&[lease(String::new())]).remove(0).unwrap_err();
    assert_eq!(f.reason, FailureReason::VersionSkew);
    assert!(f.error.contains("submit the spec again"), "{}", f.error);
}
