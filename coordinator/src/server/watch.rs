//! Watch streams: the sweep's state as it is now, then its events, ending after `finished`.

use super::convert::to_proto_event;
use super::service::{blocking, Service};
use crate::scheduler::{Event, EventKind, Scheduler};
use iscp_proto::v1::WatchEvent;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::Status;

pub(super) type EventStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;

/// A `status` event: the sweep's counts as they are now (None: no such sweep).
pub(super) fn status_event(core: &Scheduler, sweep: &str) -> Option<Event> {
    let st = core.status(sweep);
    let s = st.first()?;
    let mut e = Event {
        sweep: sweep.to_string(),
        state: EventKind::Status,
        finished: s.finished,
        ..Default::default()
    };
    for k in &s.kinds {
        e.total += k.pending + k.leased + k.done + k.failed + k.cancelled;
        e.done += k.done;
        e.failed += k.failed + k.cancelled;
        e.leased += k.leased;
    }
    Some(e)
}

/// The watch stream: the current state, then the sweep's events, ending after `finished`. A
/// watcher that fell behind (events dropped) gets a fresh `status` event, so that it can forget
/// the units whose ends it missed.
pub(super) fn watch_stream(
    svc: Service,
    first: Event,
    sweep: String,
    mut rx: tokio::sync::broadcast::Receiver<Event>,
) -> EventStream {
    let (tx, out) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let done = first.finished;
        if tx.send(Ok(to_proto_event(first))).await.is_err() || done {
            return;
        }
        loop {
            match rx.recv().await {
                Ok(e) if e.sweep == sweep => {
                    let fin = e.finished && e.state == EventKind::Finished;
                    if tx.send(Ok(to_proto_event(e))).await.is_err() || fin {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let (s, name) = (svc.clone(), sweep.clone());
                    let status =
                        blocking(move || Ok::<_, Status>(status_event(&s.scheduler(), &name)));
                    if let Ok(Some(e)) = status.await {
                        if tx.send(Ok(to_proto_event(e))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(_) => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(out))
}
