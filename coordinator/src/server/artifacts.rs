//! Artifacts over the wire: models and checkpoints streamed in chunks, to a worker (read whole,
//! outside the lock) and from one (written under a temporary name, hashed as it comes, refused
//! over the size limit or when the hash differs, renamed into place and recorded).

use super::service::{blocking, Service};
use crate::scheduler::{Purpose, SchedulerError, UnitKey};
use iscp_proto::v1::{ArtifactChunk, PutArtifactResult};
use iscp_proto::CHUNK_BYTES;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
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
        let (dir, max) = self.upload_target(&sha, &first).await?;
        let created = create_upload_dir(&dir).await?;
        let tmp = dir.join(format!(".{sha}.{:016x}.tmp", rand::random::<u64>()));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_status(&tmp, e))?;
        let (written, n, actual) =
            write_chunks(&mut file, &mut stream, first, &sha, max, &tmp).await;
        let written = written.and_then(|()| {
            (actual == sha).then_some(()).ok_or_else(|| {
                Status::invalid_argument(format!("artifact announced as {sha} hashes to {actual}"))
            })
        });
        if let Err(e) = written {
            discard_upload(&tmp, &created).await;
            return Err(e);
        }
        self.keep_upload(&dir, &tmp, &sha, &actual, n).await?;
        Ok(PutArtifactResult {
            sha256: actual,
            bytes: n,
        })
    }

    /// Checks an upload's announced `sha`, then asks the scheduler for its folder and size limit.
    async fn upload_target(
        &self,
        sha: &str,
        first: &ArtifactChunk,
    ) -> Result<(PathBuf, u64), Status> {
        if !iscp_proto::is_sha256(sha) {
            return Err(Status::invalid_argument(format!(
                "`{}` is not a sha256 in lowercase hex",
                sha.escape_debug()
            )));
        }
        let purpose = Purpose::parse(&first.purpose)?;
        let key = UnitKey::new(first.sweep.as_str(), first.unit_id.as_str());
        // Checked against the scheduler's own names before anything touches the disk.
        let (svc, worker) = (self.clone(), first.worker_id.clone());
        blocking(move || {
            let core = svc.scheduler();
            Ok::<_, SchedulerError>((
                core.upload_dir(purpose, &key, &worker)?,
                core.max_artifact_bytes(),
            ))
        })
        .await
    }

    /// Renames a written upload into place and records it with the scheduler.
    async fn keep_upload(
        &self,
        dir: &Path,
        tmp: &Path,
        sha: &str,
        actual: &str,
        n: u64,
    ) -> Result<(), Status> {
        let path = iscp_sweep::work::artifact_path(dir, sha);
        tokio::fs::rename(tmp, &path)
            .await
            .map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        let (svc, sha, p) = (
            self.clone(),
            actual.to_string(),
            path.to_string_lossy().to_string(),
        );
        blocking(move || svc.scheduler().put_artifact(&sha, &p, n)).await?;
        Ok(())
    }
}

/// Creates an upload's folder: those it created, to remove again (when empty) if it is refused.
async fn create_upload_dir(dir: &Path) -> Result<Vec<PathBuf>, Status> {
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.exists())
        .map(Into::into)
        .collect();
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Status::internal(format!("{}: {e}", dir.display())))?;
    Ok(created)
}

/// An error writing the temporary file `tmp` as the worker gets it.
fn io_status(tmp: &Path, e: std::io::Error) -> Status {
    let what = format!("{}: {e}", tmp.display());
    // A full disk is not transient to the worker: it fails the unit with the reason.
    if iscp_sweep::error::io_out_of_space(&e) {
        Status::resource_exhausted(format!("coordinator out of space: {what}"))
    } else {
        Status::internal(what)
    }
}

/// Writes and hashes an upload's chunks (`first`, then `stream`'s) to `file`: (outcome, size, sha).
async fn write_chunks(
    file: &mut tokio::fs::File,
    stream: &mut Streaming<ArtifactChunk>,
    first: ArtifactChunk,
    sha: &str,
    max: u64,
    tmp: &Path,
) -> (Result<(), Status>, u64, String) {
    let io = |e: std::io::Error| io_status(tmp, e);
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
    (written, n, actual)
}

/// Removes a refused upload's temporary file and the folders it created (those left empty).
async fn discard_upload(tmp: &Path, created: &[PathBuf]) {
    let _ = tokio::fs::remove_file(tmp).await;
    for d in created {
        let _ = tokio::fs::remove_dir(d).await;
    }
}
