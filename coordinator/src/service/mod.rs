//! The coordinator service: the ledger-backed scheduler (`core`), its gRPC face (`grpc`), token
//! checks (`auth`), spec submission (`submit`) and the finishing of sweeps (`finalize`).
//! `serve(listener, options, shutdown)` is the entry point the binary and the tests call.

mod auth;
mod checkpoints;
mod completion;
mod control;
mod convert;
mod core;
mod derived;
mod durable;
mod finalize;
mod grpc;
mod latency;
mod lease;
mod ledger;
mod outcome;
mod queue;
mod reconcile;
mod state;
pub mod status;
mod submit;
mod uploads;

pub use self::core::{now_ms, Core, Key, LeaseClaim, Leased, NewUnit, Table, UnitKey};
pub use completion::{check_parts, CheckedParts, Completion, PartsOf, StagedParts};
pub use convert::to_proto_event;
pub use grpc::Service;
pub use iscp_proto::v1::EventKind;
pub use latency::LatencyLog;
pub use lease::Beat;
pub use ledger::LedgerError;
pub use state::UnitState;
pub use uploads::Purpose;

use std::path::PathBuf;
use std::time::Duration;

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Holds `ledger.sqlite`.
    pub state_dir: PathBuf,
    /// Results land in `<results_dir>/<sweep>/<table>/part-<unit>.parquet`.
    pub results_dir: PathBuf,
    /// A lease not extended by a heartbeat for this long goes back to the queue.
    pub lease_ttl: Duration,
    /// How often workers are told to heartbeat.
    pub heartbeat: Duration,
    /// Failed attempts of its own (reported by its worker) after which a unit is failed for good.
    pub max_attempts: u32,
    /// Expired leases after which a unit is failed for good (counted apart from `max_attempts`).
    pub max_expiries: u32,
    /// First retry delay; doubles with each failed attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The largest artifact (model, checkpoint) a worker may upload.
    pub max_artifact_bytes: u64,
    /// The largest spec source a sweep may be submitted with (every lease carries it).
    pub max_spec_bytes: usize,
    /// What one lease's units may carry in all (spec, parameters, inputs): below the wire's
    /// message limit, so that a lease recorded is a lease delivered.
    pub max_lease_bytes: usize,
}

impl CoreConfig {
    pub fn new(state_dir: PathBuf, results_dir: PathBuf) -> CoreConfig {
        CoreConfig {
            state_dir,
            results_dir,
            lease_ttl: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            max_attempts: 3,
            max_expiries: 10,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            max_artifact_bytes: 4096 << 20,
            max_spec_bytes: 1 << 20,
            max_lease_bytes: iscp_proto::MAX_MESSAGE_BYTES - (1 << 20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A completion or failure whose lease is not current: refused and written nowhere.
    #[error("stale lease: {0}")]
    Stale(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Coord(#[from] iscp_sweep::CoordError),
}

impl CoreError {
    /// Whether the disk (or quota) of the state or results folder is full.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            CoreError::Coord(c) => c.is_out_of_space(),
            CoreError::Ledger(l) => iscp_sweep::error::says_out_of_space(&l.to_string()),
            _ => false,
        }
    }

    pub fn io(path: impl Into<PathBuf>, e: std::io::Error) -> Self {
        CoreError::Coord(iscp_sweep::CoordError::io(path, e))
    }
}

pub type CResult<T> = std::result::Result<T, CoreError>;

/// A change in a sweep, for watchers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub sweep: String,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub leased: u64,
    pub unit_id: String,
    pub kind: String,
    pub state: EventKind,
    pub worker: String,
    pub step: u64,
    pub steps: u64,
    pub message: String,
    pub finished: bool,
    /// The sweep's estimated work in all and of its settled units (`WatchEvent.work_total`).
    pub work_total: u64,
    pub work_done: u64,
    /// The estimated work of the unit this event is about.
    pub unit_work: u64,
    /// Leased: the device of the worker's slot that took the unit.
    pub device: String,
    /// Leased: what the unit works on.
    pub label: Option<iscp_proto::v1::UnitLabel>,
}

/// TLS material of the server, PEM encoded.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub core: CoreConfig,
    /// When set, every call must carry `authorization: Bearer <token>`.
    pub token: Option<String>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the coordinator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let service = Service::open(opts.core.clone())?;
    serve_with(listener, service, opts, shutdown).await
}

/// Serves an already opened service (the in-process runner keeps a handle to it).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    service: Service,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use iscp_proto::{CoordinatorServer, MAX_MESSAGE_BYTES};
    let background = service.spawn_background();
    let server = CoordinatorServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let server = tonic::service::interceptor::InterceptedService::new(
        server,
        auth::TokenCheck::new(opts.token.clone()),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &opts.tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert, &tls.key);
        builder =
            builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // Small request/response messages: no Nagle delay on accepted connections.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |s| {
            s.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    // Graceful stop, bounded: open watch streams would otherwise hold the server forever.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let serving = builder
        .add_service(server)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        });
    tokio::pin!(serving);
    let out = tokio::select! {
        out = &mut serving => out,
        _ = shutdown => {
            let _ = stop_tx.send(true);
            match tokio::time::timeout(STOP_GRACE, &mut serving).await {
                Ok(out) => out,
                Err(_) => {
                    tracing::warn!("calls still open after {STOP_GRACE:?}: stopping anyway");
                    Ok(())
                }
            }
        }
    };
    background.abort();
    Ok(out?)
}

/// How long a stopping coordinator lets open calls finish (the ledger is durable either way).
const STOP_GRACE: Duration = Duration::from_secs(5);
