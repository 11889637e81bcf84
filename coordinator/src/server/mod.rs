//! The coordinator's server: gRPC calls translated to scheduler calls and back (`rpc`), each on a
//! blocking thread that holds the scheduler's lock (`service`) and answers only once the ledger's
//! commit is on disk (`durable`); artifact streams (`artifacts`), watch streams (`watch`),
//! batched completions (`complete`), token checks (`auth`) and the finishing of sweeps
//! (`finalize`). `serve(listener, options, shutdown)` is the entry point the binary and the tests
//! call.

mod artifacts;
mod auth;
mod complete;
mod convert;
mod durable;
mod finalize;
mod latency;
mod rpc;
mod service;
mod status_code;
mod watch;

pub use complete::Completion;
pub use convert::to_proto_event;
pub use latency::LatencyLog;
pub use service::Service;

use crate::scheduler::{SchedulerConfig, SchedulerError};
use std::time::Duration;

/// TLS material of the server, PEM encoded.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub scheduler: SchedulerConfig,
    /// When set, every call must carry `authorization: Bearer <token>`.
    pub token: Option<String>,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the coordinator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let service = Service::open(opts.scheduler.clone())?;
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
