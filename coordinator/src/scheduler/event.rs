//! Sweep events for watchers: built only when someone watches, with the sweep's counts.

use super::ledger::UnitRow;
use super::{Key, Scheduler};
use iscp_proto::v1::EventKind;

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

impl Scheduler {
    pub(super) fn emit(
        &self,
        sweep: &str,
        unit: Option<&UnitRow>,
        event: EventKind,
        message: String,
    ) {
        self.send_event(sweep, unit, event, message, (0, 0));
    }

    /// Whether anyone watches (events are only built for watchers).
    pub(super) fn watched(&self) -> bool {
        self.events.receiver_count() > 0
    }

    /// The words for a unit of `row`'s kind with `params` (None for units that have none).
    fn label_of(&self, row: &UnitRow, params: &str) -> Option<iscp_proto::v1::UnitLabel> {
        let names = self
            .sweeps
            .get(row.sweep.as_str())
            .map_or(&[][..], |s| &s.class_names[..]);
        iscp_sweep::label::label(row.kind, params, names)
    }

    /// A unit was leased (its slot recorded in `leased`): the event carries the slot's device
    /// and what the unit works on, decoded from the parameters the lease carries.
    pub(super) fn emit_leased(&mut self, key: &Key, unit: &UnitRow, params: &str) {
        let Some(mut e) = self.event(&unit.sweep, Some(unit), EventKind::Leased, String::new())
        else {
            return;
        };
        let label = self.label_of(unit, params);
        if let Some(slot) = self.leased.get_mut(key) {
            slot.label.clone_from(&label);
            slot.decoded = true;
            e.device = slot.device.clone();
        }
        e.label = label;
        let _ = self.events.send(e);
    }

    /// A unit's progress: `step` of `total` (its kind's units: epochs' batches, search steps).
    /// It carries the unit's slot and words too, so that a watch that began after the lease
    /// still says what runs where; the words are decoded once, at the first such step.
    /// Progress is for people: a ledger read that fails leaves the words out, never the beat.
    pub(super) fn emit_step(&mut self, key: &Key, unit: &UnitRow, step: u64, total: u64) {
        let Some(mut e) = self.event(&unit.sweep, Some(unit), EventKind::Progress, String::new())
        else {
            return;
        };
        (e.step, e.steps) = (step, total);
        if self.leased.get(key).is_some_and(|s| !s.decoded) {
            let params = match self.ledger.params(&unit.id) {
                Ok(p) => p.unwrap_or_default(),
                Err(err) => {
                    tracing::warn!("the parameters of {key} for its progress words: {err}");
                    String::new()
                }
            };
            let label = self.label_of(unit, &params);
            if let Some(s) = self.leased.get_mut(key) {
                (s.label, s.decoded) = (label, true);
            }
        }
        if let Some(s) = self.leased.get(key) {
            e.device = s.device.clone();
            e.label = s.label.clone();
        }
        let _ = self.events.send(e);
    }

    fn send_event(
        &self,
        sweep: &str,
        unit: Option<&UnitRow>,
        event: EventKind,
        message: String,
        (step, steps): (u64, u64),
    ) {
        if let Some(mut e) = self.event(sweep, unit, event, message) {
            (e.step, e.steps) = (step, steps);
            let _ = self.events.send(e);
        }
    }

    /// The event about `unit` (or the sweep) with the sweep's counts; None when nobody watches.
    fn event(
        &self,
        sweep: &str,
        unit: Option<&UnitRow>,
        event: EventKind,
        message: String,
    ) -> Option<Event> {
        if !self.watched() {
            return None;
        }
        let (total, done, failed, leased) = self.counts(sweep);
        let s = self.sweeps.get(sweep);
        let finished = s.is_some_and(|s| s.finalized);
        let (work_total, work_done) = s.map(|s| s.ix.work_totals()).unwrap_or_default();
        let mut e = Event {
            sweep: sweep.to_string(),
            total,
            done,
            failed,
            leased,
            state: event,
            message,
            finished,
            work_total,
            work_done,
            ..Default::default()
        };
        if let Some(u) = unit {
            e.unit_id = u.id.clone();
            e.unit_work = u.work;
            e.kind = u.kind.to_string();
            e.worker = self
                .workers
                .get(&u.worker)
                .map(|w| w.name.clone())
                .unwrap_or_else(|| u.worker.clone());
        }
        Some(e)
    }
}
