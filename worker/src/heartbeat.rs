//! Heartbeats: every interval the worker reports the progress of the units it holds, which extends
//! their leases; the answer names units to drop and says when to register again.

use crate::shared::Shared;
use iscp_proto::v1::{HeartbeatParams, UnitProgress};
use iscp_proto::{UnitKey, PROTOCOL_VERSION};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub async fn run_heartbeats(shared: Arc<Shared>) {
    loop {
        let ms = shared.heartbeat_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let progress: Vec<UnitProgress> = {
            let p = shared.progress.lock().unwrap_or_else(|e| e.into_inner());
            let ck = shared.checkpoints();
            shared
                .held()
                .iter()
                .map(|(key, h)| {
                    let (step, total) = p.get(key).copied().unwrap_or((0, 0));
                    let (checkpoint_epoch, checkpoint_sha256, checkpoint_stats) =
                        ck.get(key).cloned().unwrap_or_default();
                    UnitProgress {
                        sweep: key.sweep.to_string(),
                        unit_id: key.unit.to_string(),
                        attempt: h.attempt,
                        step,
                        total,
                        checkpoint_epoch,
                        checkpoint_sha256,
                        checkpoint_stats,
                    }
                })
                .collect()
        };
        let req = HeartbeatParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: shared.worker_id.clone(),
            progress,
        };
        match shared.client.clone().heartbeat(req).await {
            Ok(r) => {
                let r = r.into_inner();
                if r.register_again {
                    tracing::info!("the coordinator restarted: registering again");
                    if let Err(e) = shared.register().await {
                        tracing::error!("{e}");
                    }
                }
                let mut held = shared.held();
                for r in &r.cancel {
                    let key = UnitKey::from(r);
                    if let Some(h) = held.get_mut(&key) {
                        tracing::info!("unit {key} is no longer ours: its result will be dropped");
                        h.cancelled = true;
                    }
                }
            }
            Err(s) => tracing::debug!("heartbeat: {s}"),
        }
    }
}
