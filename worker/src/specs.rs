//! Fetching a spec's text by its hash from the coordinator (FetchSpec) on a compute thread: a
//! lease names its spec by hash, and the executor asks for the text once and keeps it.

use crate::retry::with_retries;
use crate::shared::Shared;
use iscp_proto::v1::FetchSpecParams;
use iscp_proto::PROTOCOL_VERSION;
use iscp_sweep::SweepError;
use std::sync::Arc;

/// Fetches the spec with this sha256: (its text, the file it came from).
pub type SpecSource = Arc<dyn Fn(&str) -> Result<(String, String), SweepError> + Send + Sync>;

/// Transient errors (the coordinator restarting) are retried this many times with backoff (about
/// 30 s in all): a unit fails, and spends an attempt, only when its spec stays out of reach.
const TRIES: usize = 12;

/// A spec source that calls the coordinator; call it from a thread outside the runtime.
pub fn from_coordinator(shared: &Shared) -> SpecSource {
    let handle = tokio::runtime::Handle::current();
    let (client, worker_id) = (shared.client.clone(), shared.worker_id.clone());
    Arc::new(move |sha| {
        let req = FetchSpecParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: worker_id.clone(),
            spec_sha256: sha.to_string(),
        };
        let client = client.clone();
        let fetched = handle.block_on(with_retries(TRIES, || {
            let (mut client, req) = (client.clone(), req.clone());
            async move { client.fetch_spec(req).await }
        }));
        match fetched {
            Ok(r) => {
                let r = r.into_inner();
                Ok((r.spec_toml, r.spec_file))
            }
            Err(s) => Err(SweepError::Missing(format!(
                "fetching spec {}: {}",
                sha.escape_debug(),
                s.message()
            ))),
        }
    })
}

/// A spec source that knows these specs, (sha256, text, file) each (tests, and callers that hold
/// the texts already).
pub fn known(specs: &[(&str, &str, &str)]) -> SpecSource {
    let specs: Vec<(String, String, String)> = specs
        .iter()
        .map(|(sha, toml, file)| (sha.to_string(), toml.to_string(), file.to_string()))
        .collect();
    Arc::new(move |asked| {
        specs
            .iter()
            .find(|(sha, _, _)| sha == asked)
            .map(|(_, toml, file)| (toml.clone(), file.clone()))
            .ok_or_else(|| SweepError::Missing(format!("spec {asked}: not known here")))
    })
}
