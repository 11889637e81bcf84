//! Completions of several units in one CompleteUnits call answer each unit on its own (one
//! refused leaves the others done, exactly once); a derived shard is hashed when its part lands,
//! and a restarted coordinator leases it by that hash without reading the part again.

mod common;

use common::{claim_of, config, key, lease_one, open, open_with, part, unit};
use iscp_coordinator::server::{serve_with, ServeOptions, Service};
use iscp_proto::v1::*;
use iscp_proto::{CoordinatorClient, MAX_BATCH_UNITS, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};
use tonic::Code;

fn completion(u: &LeasedUnit, attempt: u64, parts: Vec<TablePart>) -> CompleteUnitParams {
    CompleteUnitParams {
        protocol_version: PROTOCOL_VERSION,
        worker_id: "w".into(),
        sweep: u.sweep.clone(),
        unit_id: u.unit_id.clone(),
        lease_id: u.lease_id.clone(),
        attempt,
        parts,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_completions_answers_each_unit_and_lands_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let service = Service::open(cfg.clone()).unwrap();
    service.submit_noop("s", 6).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        scheduler: cfg,
        token: None,
        tls: None,
    };
    let server = tokio::spawn(serve_with(listener, service.clone(), opts, async {
        let _ = stopped.await;
    }));
    let mut client = CoordinatorClient::connect(url).await.unwrap();
    client
        .register_worker(RegisterWorkerParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: "w".into(),
            name: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let leased = client
        .lease_units(LeaseUnitsParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: "w".into(),
            max_units: 5,
            wait_ms: 2000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .units;
    assert_eq!(leased.len(), 5);
    let mut unknown = completion(&leased[0], 1, vec![]);
    unknown.unit_id = "noop-none".into();
    let batch = vec![
        completion(&leased[0], 1, vec![]),
        // Another attempt's token: stale.
        completion(&leased[1], 2, vec![]),
        // A noop unit writes no table.
        completion(
            &leased[2],
            1,
            vec![TablePart {
                table: "searches".into(),
                parquet: part("searches", &leased[2].unit_id, ""),
            }],
        ),
        completion(&leased[3], 1, vec![]),
        unknown,
    ];
    let answers = client
        .complete_units(CompleteUnitsParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: "w".into(),
            units: batch.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .units;
    let codes: Vec<Code> = answers.iter().map(|a| Code::from(a.code)).collect();
    assert_eq!(
        codes,
        [
            Code::Ok,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::Ok,
            Code::NotFound
        ],
        "{answers:?}"
    );
    let ids: Vec<&str> = answers.iter().map(|a| a.unit_id.as_str()).collect();
    let sent: Vec<&str> = batch.iter().map(|c| c.unit_id.as_str()).collect();
    assert_eq!(ids, sent, "answers come in the call's order");
    assert!(answers[2].message.contains("cannot write table"));
    let st = &service.status("s")[0];
    let (done, leased_now): (u64, u64) = st
        .kinds
        .iter()
        .fold((0, 0), |(d, l), k| (d + k.done, l + k.leased));
    assert_eq!((done, leased_now), (2, 3));
    // Sent again (a worker that did not hear the answer), the done units are refused, not
    // landed twice.
    let again = client
        .complete_units(CompleteUnitsParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: "w".into(),
            units: vec![batch[0].clone(), batch[3].clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .units;
    assert!(again
        .iter()
        .all(|a| Code::from(a.code) == Code::FailedPrecondition));
    // Too many units in one call is refused as a whole.
    let too_many = client
        .complete_units(CompleteUnitsParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: "w".into(),
            units: vec![batch[4].clone(); MAX_BATCH_UNITS + 1],
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[test]
fn a_derived_shard_is_hashed_when_it_lands_and_leased_by_that_hash_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let shard = part("derived", "d", "");
    let sha = hex::encode(Sha256::digest(&shard));
    {
        let units = vec![
            unit("d", "derive-data", "", &[]),
            unit("p", "prepare-model", "", &["d"]),
        ];
        let mut core = open_with(dir.path(), units);
        let l = lease_one(&mut core, "w");
        assert_eq!(l.unit_id, "d");
        let parts = vec![("derived".to_string(), shard.clone())];
        core.complete(&key("d"), claim_of("w", &l), parts, None)
            .unwrap();
    }
    // Changed on disk after it landed: a lease that hashed the file now would name another hash.
    let path = dir.path().join("results/s/derived/part-d.parquet");
    assert!(path.exists());
    std::fs::write(&path, b"not the shard").unwrap();
    let mut core = open(dir.path());
    let l = lease_one(&mut core, "w");
    assert_eq!(l.unit_id, "p");
    assert_eq!(l.input_artifacts, [sha]);
}
