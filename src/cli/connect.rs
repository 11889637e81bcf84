//! Where the coordinator is, for the commands that talk to one (worker, submit, status, watch,
//! cancel, retry-failed): flags, or the environment.

use anyhow::Context;
use iscp_coordinator::scheduler::SchedulerConfig;
use iscp_coordinator::server::{serve_with, ServeError, ServeOptions, Service};
use iscp_worker::{connect, Client, Connect};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The coordinator: http://HOST:PORT, or https://HOST:PORT with --ca.
    #[arg(
        long,
        env = "ISCP_COORDINATOR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub coordinator: String,
    /// The coordinator's token (sent as `authorization: Bearer <token>`).
    #[arg(long, env = "ISCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the token (its first line), readable by its owner only (chmod 600): keeps
    /// the secret off the command line, where `ps` shows it. Wins over --token / ISCP_TOKEN.
    #[arg(long, env = "ISCP_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the coordinator's TLS certificate.
    #[arg(long, env = "ISCP_CA")]
    pub ca: Option<PathBuf>,
}

impl ConnectArgs {
    pub fn to_connect(&self) -> anyhow::Result<Connect> {
        let ca = match &self.ca {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        Ok(Connect {
            url: self.coordinator.clone(),
            token: super::secret::token(&self.token, &self.token_file)?,
            ca,
        })
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(connect(&self.to_connect()?)?)
    }
}

/// A gRPC refusal as a readable error.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    let what = match s.code() {
        tonic::Code::Unavailable => "the coordinator cannot be reached",
        tonic::Code::Unauthenticated => "the coordinator refused the token",
        tonic::Code::InvalidArgument => "the coordinator refused the request",
        tonic::Code::NotFound => "not found",
        _ => "the coordinator answered with an error",
    };
    anyhow::anyhow!("{what}: {}", s.message())
}

/// A runtime for the async commands (the compute stays on its own threads).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// A coordinator serving in this process, as spawned: its task.
pub type ServerTask = tokio::task::JoinHandle<Result<(), ServeError>>;

/// Serves the already opened `service` (configured by `scheduler`) on a free loopback port,
/// without token or TLS: the URL to reach it at, the sender that stops it, and its task.
pub async fn serve_loopback(
    service: &Service,
    scheduler: SchedulerConfig,
) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>, ServerTask)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let opts = ServeOptions {
        scheduler,
        token: None,
        tls: None,
    };
    let server = tokio::spawn(serve_with(listener, service.clone(), opts, async {
        let _ = stopped.await;
    }));
    Ok((url, stop, server))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
