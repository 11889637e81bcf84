//! Artifacts over the wire: models and checkpoints streamed in chunks, to a worker (read whole,
//! outside the lock) and from one (written under a temporary name, hashed as it comes, refused
//! over the size limit or when the hash differs, renamed into place and recorded).

use super::service::{blocking, Service};
use crate::scheduler::{Purpose, SchedulerError, UnitKey};
use iscp_proto::v1::{ArtifactChunk, PutArtifactResult};
use iscp_proto::CHUNK_BYTES;
use sha2::{Digest, Sha256};
use std::pin::Pin;
use tokio::io::AsyncWriteExt;
use tokio_stream::{Stream, StreamExt};
use tonic::{Status, Streaming};

pub(super) type ChunkStream = Pin<Box<dyn Stream<Item = Result<ArtifactChunk, Status>> + Send>>;

impl Service {
    /// The artifact `sha`, as a stream of chunks.
    pub(super) async fn send_artifact(&self, sha: String) -> Result<ChunkStream, Status> {
        let svc = self.clone();
        let s = sha.clone();
        let path = blocking(move || svc.scheduler().artifact_path(&s))
            .await?
            .ok_or_else(|| Status::not_found(format!("artifact {sha}")))?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::internal(format!("{path}: {e}")))?;
        let chunks: Vec<Result<ArtifactChunk, Status>> = bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(i, c)| {
                Ok(ArtifactChunk {
                    sha256: if i == 0 { sha.clone() } else { String::new() },
                    sweep: String::new(),
                    data: c.to_vec(),
                    ..Default::default()
                })
            })
            .collect();
        Ok(Box::pin(tokio_stream::iter(chunks)))
    }

    /// Receives an upload (its first chunk names the artifact, its purpose and unit).
    pub(super) async fn receive_artifact(
        &self,
        mut stream: Streaming<ArtifactChunk>,
    ) -> Result<PutArtifactResult, Status> {
        let Some(first) = stream.next().await.transpose()? else {
            return Err(Status::invalid_argument("an empty upload"));
        };
        let sha = first.sha256.clone();
        if !iscp_proto::is_sha256(&sha) {
            return Err(Status::invalid_argument(format!(
                "`{}` is not a sha256 in lowercase hex",
                sha.escape_debug()
            )));
        }
        let purpose = Purpose::parse(&first.purpose)?;
        let key = UnitKey::new(first.sweep.as_str(), first.unit_id.as_str());
        // Checked against the scheduler's own names before anything touches the disk.
        let (svc, worker) = (self.clone(), first.worker_id.clone());
        let (dir, max) = blocking(move || {
            let core = svc.scheduler();
            Ok::<_, SchedulerError>((
                core.upload_dir(purpose, &key, &worker)?,
                core.max_artifact_bytes(),
            ))
        })
        .await?;
        // Folders this upload creates, removed again (when empty) if it is refused.
        let created: Vec<std::path::PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.exists())
            .map(Into::into)
            .collect();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", dir.display())))?;
        let tmp = dir.join(format!(".{sha}.{:016x}.tmp", rand::random::<u64>()));
        let io = |e: std::io::Error| {
            let what = format!("{}: {e}", tmp.display());
            // A full disk is not transient to the worker: it fails the unit with the reason.
            if iscp_sweep::error::io_out_of_space(&e) {
                Status::resource_exhausted(format!("coordinator out of space: {what}"))
            } else {
                Status::internal(what)
            }
        };
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let (mut hasher, mut n) = (Sha256::new(), 0u64);
        let mut chunk = Some(first);
        let written: Result<(), Status> = async {
            while let Some(c) = chunk.take() {
                n += c.data.len() as u64;
                if n > max {
                    return Err(Status::resource_exhausted(format!(
                        "artifact {sha} is larger than the coordinator's limit of {} MiB \
                         (--max-artifact-mib)",
                        max >> 20
                    )));
                }
                hasher.update(&c.data);
                file.write_all(&c.data).await.map_err(io)?;
                chunk = stream.next().await.transpose()?;
            }
            file.sync_all().await.map_err(io)?;
            if n == 0 {
                return Err(Status::invalid_argument(format!(
                    "artifact {sha} has 0 bytes: not a model or checkpoint"
                )));
            }
            Ok(())
        }
        .await;
        let actual = hex::encode(hasher.finalize());
        let written = written.and_then(|()| {
            (actual == sha).then_some(()).ok_or_else(|| {
                Status::invalid_argument(format!("artifact announced as {sha} hashes to {actual}"))
            })
        });
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            for d in &created {
                let _ = tokio::fs::remove_dir(d).await;
            }
            return Err(e);
        }
        let path = iscp_sweep::work::artifact_path(&dir, &sha);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        let (svc, sha, p) = (
            self.clone(),
            actual.clone(),
            path.to_string_lossy().to_string(),
        );
        blocking(move || svc.scheduler().put_artifact(&sha, &p, n)).await?;
        Ok(PutArtifactResult {
            sha256: actual,
            bytes: n,
        })
    }
}
