//! `iscp watch SWEEP`: progress bars fed by the coordinator's watch stream, until the sweep ends.

use super::admin::SweepArgs;
use super::connect::{runtime, status_error};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use iscp_proto::v1::{EventKind, WatchSweepParams};
use std::collections::HashMap;
use tokio_stream::StreamExt;

pub fn watch(a: SweepArgs) -> anyhow::Result<()> {
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
        let mp = MultiProgress::new();
        let overall = mp.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:40.cyan/blue}] {pos}/{len} units  {per_sec}  ETA {eta}  {msg}",
            )?
            .progress_chars("=> "),
        );
        overall.set_prefix(a.sweep.clone());
        let unit_style =
            ProgressStyle::with_template("{prefix:>8} [{bar:40.green/white}] {pos}/{len} {msg}")?
                .progress_chars("=> ");
        // One bar per worker, showing its current unit's steps.
        let mut workers: HashMap<String, ProgressBar> = HashMap::new();
        let mut last_message = String::new();
        while let Some(e) = stream.next().await {
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
            overall.set_length(e.total);
            overall.set_position(e.done + e.failed);
            overall.set_message(format!("{} leased, {} failed", e.leased, e.failed));
            if !e.worker.is_empty() {
                let bar = workers.entry(e.worker.clone()).or_insert_with(|| {
                    let b = mp.add(ProgressBar::new(1));
                    b.set_style(unit_style.clone());
                    b.set_prefix(e.worker.clone());
                    b
                });
                match e.event() {
                    EventKind::Progress => {
                        bar.set_length(e.steps.max(1));
                        bar.set_position(e.step);
                    }
                    EventKind::Leased => {
                        bar.set_position(0);
                        bar.set_message(format!("{} {}", e.kind, e.unit_id));
                    }
                    EventKind::Failed | EventKind::Retrying => mp.println(format!(
                        "{} {} {}: {}",
                        e.event().name(),
                        e.kind,
                        e.unit_id,
                        e.message
                    ))?,
                    _ => {}
                }
            }
            if e.event() == EventKind::Finished || e.finished {
                last_message = e.message.clone();
                break;
            }
        }
        overall.finish();
        for b in workers.values() {
            b.finish_and_clear();
        }
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
