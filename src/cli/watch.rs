//! `iscp watch SWEEP`: progress fed by the coordinator's watch stream, until the sweep ends (the
//! same bars and words as `iscp run`).

use super::admin::WatchArgs;
use super::connect::{runtime, status_error};
use super::progress::View;
use iscp_proto::v1::{EventKind, WatchSweepParams};
use std::time::Duration;
use tokio_stream::StreamExt;

pub fn watch(a: WatchArgs) -> anyhow::Result<()> {
    let rt = runtime()?;
    let _entered = rt.enter();
    let mut client = a.connect.client()?;
    rt.block_on(async move {
        let mut stream = client
            .watch_sweep(WatchSweepParams {
                sweep: a.sweep.clone(),
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let mut view = View::new(&a.sweep, a.quiet);
        let mut ticks = tokio::time::interval(Duration::from_millis(500));
        let mut last_message = String::new();
        loop {
            let e = tokio::select! {
                e = stream.next() => e,
                _ = ticks.tick() => {
                    view.tick();
                    continue;
                }
            };
            let Some(e) = e else { break };
            let e = e.map_err(|s| match s.code() {
                tonic::Code::Unknown | tonic::Code::Unavailable | tonic::Code::Internal => {
                    anyhow::anyhow!(
                        "the coordinator went away (stopped or restarting): run `iscp watch {}` again ({})",
                        a.sweep,
                        s.message()
                    )
                }
                _ => status_error(s),
            })?;
            view.on(&e);
            if e.event() == EventKind::Finished || e.finished {
                last_message = e.message.clone();
                break;
            }
        }
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
