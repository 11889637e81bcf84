//! `iscp watch SWEEP`: progress fed by the coordinator's watch stream, until the sweep ends (the
//! same bars and words as `iscp run`). A coordinator that goes away (restarted, requeued by Slurm)
//! is waited for and the stream opened again, for up to `RECONNECT_FOR`.

use super::connect::{runtime, status_error, ConnectArgs};
use super::progress::View;
use iscp_proto::v1::{EventKind, WatchEvent, WatchSweepParams};
use iscp_worker::Client;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::Streaming;

/// How long a watcher keeps trying to reach a coordinator that went away.
const RECONNECT_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The sweep (the spec's `name`).
    pub sweep: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// No bars: one line per finished stage (also when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
}

/// Whether a gRPC error means the coordinator is away (not that it refused the watch).
fn away(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unknown
            | tonic::Code::Unavailable
            | tonic::Code::Internal
            | tonic::Code::Cancelled
            | tonic::Code::DeadlineExceeded
    )
}

/// `iscp watch`: the sweep's progress, from the coordinator's watch stream, until it finishes.
pub fn watch(a: WatchArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let _entered = rt.enter();
    let client = a.connect.client()?;
    rt.block_on(async move {
        let mut view = View::new(&a.sweep, a.quiet);
        let mut ticks = tokio::time::interval(Duration::from_millis(500));
        // Set while the coordinator is away: since when, and how many tries so far.
        let mut lost: Option<(Instant, u32)> = None;
        let last_message = loop {
            let Some(stream) = open_watch(&client, &a.sweep, &mut view, &mut lost).await? else {
                continue;
            };
            if let Some(message) = follow(stream, &mut ticks, &mut view, &mut lost).await? {
                break message;
            }
        };
        view.finish();
        eprintln!(
            "{}: {}",
            a.sweep,
            if last_message.is_empty() {
                "finished"
            } else {
                &last_message
            }
        );
        anyhow::Ok(())
    })
}

/// Opens the watch stream of `sweep`: None after waiting for a coordinator that is away.
async fn open_watch(
    client: &Client,
    sweep: &str,
    view: &mut View,
    lost: &mut Option<(Instant, u32)>,
) -> anyhow::Result<Option<Streaming<WatchEvent>>> {
    let opened = client
        .clone()
        .watch_sweep(WatchSweepParams {
            sweep: sweep.to_string(),
        })
        .await;
    match opened {
        Ok(s) => {
            if lost.take().is_some() {
                view.note("the coordinator is back: watching again");
                view.resync();
            }
            Ok(Some(s.into_inner()))
        }
        Err(s) if away(&s) => {
            let (since, tries) = lost.get_or_insert((Instant::now(), 0));
            *tries += 1;
            if since.elapsed() > RECONNECT_FOR {
                anyhow::bail!(
                    "the coordinator has been away for {} s: run `iscp watch {}` again ({})",
                    since.elapsed().as_secs(),
                    sweep,
                    s.message()
                );
            }
            let wait = Duration::from_secs((*tries as u64).min(5));
            if *tries == 1 || tries.is_multiple_of(10) {
                view.note(&format!(
                    "the coordinator is away ({}); reconnecting, try {tries}",
                    s.message()
                ));
            }
            tokio::time::sleep(wait).await;
            Ok(None)
        }
        Err(s) => Err(status_error(s)),
    }
}

/// Shows a watch stream's events: the sweep's last message, or None if the coordinator went away.
async fn follow(
    mut stream: Streaming<WatchEvent>,
    ticks: &mut tokio::time::Interval,
    view: &mut View,
    lost: &mut Option<(Instant, u32)>,
) -> anyhow::Result<Option<String>> {
    loop {
        let e = tokio::select! {
            e = stream.next() => e,
            _ = ticks.tick() => {
                view.tick();
                continue;
            }
        };
        let e = match e {
            // The stream ended without the sweep finishing: the coordinator stopped.
            None => {
                lost.get_or_insert((Instant::now(), 0));
                return Ok(None);
            }
            Some(Err(s)) if away(&s) => {
                lost.get_or_insert((Instant::now(), 0));
                view.note(&format!(
                    "the coordinator went away ({}); reconnecting",
                    s.message()
                ));
                return Ok(None);
            }
            Some(Err(s)) => return Err(status_error(s)),
            Some(Ok(e)) => e,
        };
        view.on(&e);
        if e.event() == EventKind::Finished || e.finished {
            return Ok(Some(e.message.clone()));
        }
    }
}
