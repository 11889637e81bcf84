//! Model artifacts on the worker: a local cache named by sha256, filled from the coordinator in
//! chunks (hash verified), and trained models uploaded the same way.

use crate::client::Client;
use iscp_proto::v1::{ArtifactChunk, FetchArtifactParams};
use iscp_proto::{UnitKey, CHUNK_BYTES};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio_stream::StreamExt;

/// The artifact hashes in the cache.
pub fn cached(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return vec![];
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_suffix(".iscpm").map(String::from)
        })
        .collect()
}

/// Makes sure the artifact `sha` is in the cache; Ok(false) when the coordinator has no such
/// artifact (an imported TorchScript model is read from its path instead).
pub async fn ensure(client: &Client, dir: &Path, sha: &str) -> Result<bool, tonic::Status> {
    let path = iscp_sweep::work::artifact_path(dir, sha);
    if path.exists() {
        return Ok(true);
    }
    let mut stream = match client
        .clone()
        .fetch_artifact(FetchArtifactParams {
            sha256: sha.to_string(),
        })
        .await
    {
        Ok(s) => s.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(false),
        Err(s) => return Err(s),
    };
    let mut data = Vec::new();
    while let Some(c) = stream.next().await {
        data.extend_from_slice(&c?.data);
    }
    let actual = hex::encode(Sha256::digest(&data));
    if actual != sha {
        return Err(tonic::Status::data_loss(format!(
            "artifact {sha} arrived hashing to {actual}"
        )));
    }
    let tmp = dir.join(format!(".{sha}.tmp"));
    let write = std::fs::write(&tmp, &data).and_then(|_| std::fs::rename(&tmp, &path));
    write.map_err(|e| tonic::Status::internal(format!("{}: {e}", path.display())))?;
    Ok(true)
}

/// Uploads a trained model (`purpose` "model", stored beside the sweep's results) or a training
/// checkpoint ("checkpoint", kept by the coordinator until its unit finishes).
pub async fn put(
    client: &Client,
    worker_id: &str,
    key: &UnitKey,
    sha: &str,
    path: &Path,
    purpose: &str,
) -> Result<(), tonic::Status> {
    let data = tokio::fs::read(path)
        .await
        .map_err(|e| tonic::Status::internal(format!("{}: {e}", path.display())))?;
    put_bytes(client, worker_id, key, sha, &data, purpose).await
}

/// Uploads an artifact already in memory (see `put`).
pub async fn put_bytes(
    client: &Client,
    worker_id: &str,
    key: &UnitKey,
    sha: &str,
    data: &[u8],
    purpose: &str,
) -> Result<(), tonic::Status> {
    let chunks: Vec<ArtifactChunk> = data
        .chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, c)| {
            // The first chunk names the artifact; the others carry data only.
            let head = |s: &str| if i == 0 { s.to_string() } else { String::new() };
            ArtifactChunk {
                sha256: head(sha),
                sweep: head(&key.sweep),
                data: c.to_vec(),
                purpose: head(purpose),
                unit_id: head(&key.unit),
                worker_id: head(worker_id),
            }
        })
        .collect();
    client
        .clone()
        .put_artifact(tokio_stream::iter(chunks))
        .await?;
    Ok(())
}

/// Uploads each checkpoint a slot reports and remembers it for the next heartbeat, which tells the
/// coordinator (a checkpoint counts only once it is stored there).
pub async fn upload_checkpoints(
    shared: std::sync::Arc<crate::shared::Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::executor::CheckpointReport>,
) {
    while let Some(c) = rx.recv().await {
        // A newer epoch may already have replaced this file: then that one follows.
        let Ok(data) = tokio::fs::read(&c.model).await else {
            continue;
        };
        let sha = hex::encode(Sha256::digest(&data));
        // Sent from memory: training may finish and remove the file meanwhile.
        let sent = put_bytes(
            &shared.client,
            &shared.worker_id,
            &c.key,
            &sha,
            &data,
            "checkpoint",
        );
        match sent.await {
            Ok(()) => {
                shared
                    .checkpoints()
                    .insert(c.key.clone(), (c.epochs_done as u64, sha, c.stats_json));
            }
            Err(s) => tracing::warn!("uploading the checkpoint of {}: {s}", c.key),
        }
    }
}
