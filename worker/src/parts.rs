//! Reading finished units' parts from the coordinator (FetchPart) on a compute thread: the
//! finishing units ask for each part they read, one call at a time, on the worker's runtime.

use crate::retry::with_retries;
use crate::shared::Shared;
use iscp_proto::v1::FetchPartParams;
use iscp_proto::PROTOCOL_VERSION;
use iscp_sweep::SweepError;
use std::sync::Arc;
use tonic::Code;

/// Fetches the part (sweep, table, unit id); Ok(None) when the unit has none (it is not done).
pub type PartSource =
    Arc<dyn Fn(&str, &str, &str) -> Result<Option<Vec<u8>>, SweepError> + Send + Sync>;

/// Transient errors (the coordinator restarting) are retried this many times with backoff.
const TRIES: usize = 6;

/// A part source that calls the coordinator; call it from a thread outside the runtime.
pub fn from_coordinator(shared: &Shared) -> PartSource {
    let handle = tokio::runtime::Handle::current();
    let (client, worker_id) = (shared.client.clone(), shared.worker_id.clone());
    Arc::new(move |sweep, table, unit| {
        let req = FetchPartParams {
            protocol_version: PROTOCOL_VERSION,
            worker_id: worker_id.clone(),
            sweep: sweep.to_string(),
            table: table.to_string(),
            unit_id: unit.to_string(),
        };
        let client = client.clone();
        let fetched = handle.block_on(with_retries(TRIES, || {
            let (mut client, req) = (client.clone(), req.clone());
            async move {
                match client.fetch_part(req).await {
                    Ok(r) => Ok(Some(r.into_inner().parquet)),
                    Err(s) if s.code() == Code::NotFound => Ok(None),
                    Err(s) => Err(s),
                }
            }
        }));
        fetched.map_err(|s| {
            SweepError::Missing(format!("fetching {table} of unit {unit}: {}", s.message()))
        })
    })
}
